"""Cold start of the desktop app to its first painted frame, against a bare Qt baseline.

Each run is a fresh interpreter, timed from spawn until the child reports that
its window finished its first paint. The baseline is the least any PySide6 app pays: a bare
QApplication showing a QLabel. The app run builds the real window (theme, supervisors, tray,
dashboard, logs) on an empty data dir: it is ``rl-swarm gui`` itself, told by
RL_SWARM_GUI_QUIT_AFTER_PAINT to report its first frame and quit. Goal: app < 1 s.

    python benchmarks/gui_startup.py [--runs 5]

Runs offscreen unless a display is set (QT_QPA_PLATFORM=xcb under Xvfb works too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The baseline ends like the app does under RL_SWARM_GUI_QUIT_AFTER_PAINT: a filter sees the
# window's first Paint event, and a zero timer queued then fires once that paint is processed.
BASELINE = """
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
target = QLabel("hello")
target.resize(1200, 780)
class _FirstPaint(QObject):
    seen = False
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and not self.seen:
            self.seen = True
            QTimer.singleShot(0, lambda: (print("painted", flush=True), app.quit()))
        return False
_probe = _FirstPaint()
target.installEventFilter(_probe)
target.show()
app.exec()
"""


def first_paint(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RL_SWARM_GUI_QUIT_AFTER_PAINT": "1"}
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    for line in proc.stdout:
        if line.strip() == "painted":
            elapsed = time.perf_counter() - began
            break
    else:
        raise RuntimeError("the child exited before painting")
    proc.wait(timeout=30)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"bare QApplication + QLabel": [], "RL Swarm main window": []}
    with tempfile.TemporaryDirectory() as tmp:
        # a data dir that has been set up: every start but the very first (no first-run wizard)
        (Path(tmp) / "config").mkdir()
        (Path(tmp) / "config" / "gui.ini").write_text("[first_run]\ndone=true\n")
        baseline = ["-c", BASELINE]
        app = ["-m", "desktop.cli", "gui", "--data-dir", tmp]  # the real entry point, end to end
        first_paint(baseline)  # warm the OS file cache (and .pyc files) so both start equally warm
        first_paint(app)
        for _ in range(args.runs):  # interleaved: both see the same machine load
            results["bare QApplication + QLabel"].append(first_paint(baseline))
            results["RL Swarm main window"].append(first_paint(app))
    base = statistics.median(results["bare QApplication + QLabel"])
    print(f"cold start to first paint, {args.runs} runs each, fresh interpreter "
          f"({os.environ.get('QT_QPA_PLATFORM') or 'offscreen'})\n")
    print(f"{'program':<30}{'median s':>10}{'min s':>9}{'max s':>9}{'x baseline':>12}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<30}{med:>10.3f}{min(times):>9.3f}{max(times):>9.3f}{med / base:>12.2f}")
    app = statistics.median(results["RL Swarm main window"])
    print(f"\ngoal: app < 1.0 s -> {'met' if app < 1.0 else 'NOT met'} ({app:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
