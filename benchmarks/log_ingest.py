"""Event-loop latency while the logs page ingests a flood of lines (5,000 lines/s by default).

A producer timer feeds lines at a steady rate (catching up if it fires late) and a 5 ms probe
timer measures how late the event loop runs it: that lateness is what a user feels as a stuck
window. Three ways of showing the same lines, each for the same time:

  naive        a bare QPlainTextEdit, appendPlainText() per line (what a first version does)
  per-line     the real LogsPage, but flushed to the view after every line (no batching)
  batched      the real LogsPage as shipped: a ring, one append per 25 ms tick (FLUSH_MS)

    python benchmarks/log_ingest.py [--rate 5000] [--seconds 10]

Goal: batched p99 < 50 ms. Runs offscreen unless a display is set.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QPlainTextEdit  # noqa: E402

from desktop.gui import theme  # noqa: E402
from desktop.gui.app import protect_singletons  # noqa: E402
from desktop.gui.pages.logs import MAX_LINES, LogsPage  # noqa: E402

PROBE_MS = 5
_WORDS = "gather rollouts peer reward judge sandbox checkpoint round train loss batch token dht".split()


def make_lines(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    levels = ["INFO"] * 12 + ["DEBUG"] * 4 + ["WARNING"] * 3 + ["ERROR"]
    return [f"2026-01-01 12:00:{i % 60:02d},{i % 1000:03d} {rng.choice(levels)} desktop.node: "
            + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14))) + f" #{i}"
            for i in range(n)]


def run(kind: str, lines: list[str], rate: int, seconds: float) -> dict:
    app = QApplication.instance()
    if kind == "naive":
        widget = QPlainTextEdit()
        widget.setReadOnly(True)
        widget.setMaximumBlockCount(MAX_LINES)
        sink = widget.appendPlainText
    else:
        widget = LogsPage(tempfile.gettempdir())
        if kind == "per-line":
            def sink(text, page=widget):
                page.append_line("node", text)
                page.flush()
        else:
            def sink(text, page=widget):
                page.append_line("node", text)
    widget.resize(1100, 700)
    widget.show()
    app.processEvents()

    clock = QElapsedTimer()
    clock.start()
    sent = 0
    late: list[float] = []
    last_probe = [clock.nsecsElapsed()]

    def produce() -> None:
        nonlocal sent
        due = min(int(clock.nsecsElapsed() / 1e9 * rate), len(lines))
        while sent < due:
            sink(lines[sent])
            sent += 1

    def probe() -> None:
        now = clock.nsecsElapsed()
        late.append(max(0.0, (now - last_probe[0]) / 1e6 - PROBE_MS))
        last_probe[0] = now

    producer = QTimer(interval=10)
    producer.timeout.connect(produce)
    prober = QTimer(interval=PROBE_MS)
    prober.setTimerType(Qt.PreciseTimer)
    prober.timeout.connect(probe)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    producer.start()
    prober.start()
    loop.exec()
    producer.stop()
    prober.stop()
    elapsed = clock.nsecsElapsed() / 1e9
    if kind != "naive":
        widget.flush()
    blocks = (widget.view if kind != "naive" else widget).blockCount()
    widget.close()
    widget.deleteLater()
    app.processEvents()
    late.sort()
    return {"kind": kind, "lines": sent, "rate": sent / elapsed, "p50": statistics.median(late),
            "p99": late[int(len(late) * 0.99) - 1], "max": late[-1], "samples": len(late), "blocks": blocks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per variant")
    args = parser.parse_args()
    protect_singletons()  # PySide6 6.12 on Python 3.11 drops references to None (see app.py)
    app = QApplication([])
    theme.ThemeManager(app).apply()  # the real stylesheet and highlighter colours
    lines = make_lines(int(args.rate * args.seconds) + args.rate)
    rows = [run(kind, lines, args.rate, args.seconds) for kind in ("naive", "per-line", "batched")]
    print(f"log view ingesting {args.rate:,} lines/s for {args.seconds:g} s per variant; event-loop lateness "
          f"of a {PROBE_MS} ms probe timer ({os.environ.get('QT_QPA_PLATFORM') or 'display'})\n")
    print(f"{'variant':<10}{'lines/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'probes':>8}"
          f"{'lines kept':>12}{'p99 vs naive':>14}")
    naive_p99 = rows[0]["p99"] or 1e-9
    for r in rows:
        print(f"{r['kind']:<10}{r['rate']:>9,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['max']:>9.1f}{r['samples']:>8}"
              f"{r['blocks']:>12,}{r['p99'] / naive_p99:>13.2f}x")
    batched = rows[-1]
    print(f"\ngoal: batched p99 < 50 ms -> {'met' if batched['p99'] < 50 else 'NOT met'} "
          f"({batched['p99']:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
