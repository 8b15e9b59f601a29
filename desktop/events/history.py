"""A peer's history, one line per finished round, kept in ``<data dir>/history.jsonl`` by the node
and read back by whoever shows it (the app's dashboard at launch, `rl-swarm` status pages), so a
chart after a restart shows every round the peer played, not only this launch's.

Append-only JSON lines, flushed and fsynced per round; a node killed while writing leaves at most a
partial last line, which readers skip. Bounded: past ``2 * KEEP`` lines the file is rewritten
(atomically) with its last ``KEEP``. Light: the app imports it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from desktop.events.status import NodeStatus
from desktop.utils.fsutil import FileTooLarge, read_bounded, write_private

HISTORY_FILE = "history.jsonl"
KEEP = 5000
MAX_BYTES = 16 * 1024 * 1024  # 2 * KEEP rows of a few hundred bytes, with room to spare
_NUMBERS = ("reward_mean", "loss", "skill", "generate_s", "judge_s", "train_s", "comm_s", "peers", "ts")


def history_file(data_dir) -> Path:
    return Path(data_dir) / HISTORY_FILE


class HistoryFile:
    """An event listener (``sink.subscribe``) that appends a row for every finished round."""

    def __init__(self, path, keep: int = KEEP) -> None:
        self.path = Path(path)
        self.keep = keep
        self.status = NodeStatus()
        self._lines: int | None = None
        self._confirmed = False

    def __call__(self, ev: dict) -> None:
        self.status.apply(ev)
        if ev["type"] == "round_started":  # whether the chain named this round
            self._confirmed = bool(ev.get("confirmed", False))
        if ev["type"] != "round_finished" or not self.status.history:
            return
        row = {**self.status.history[-1], "peers": len(self.status.peers_seen), "confirmed": self._confirmed,
               "ts": round(time.time(), 3)}
        try:
            self._append(json.dumps(row, separators=(",", ":")))
        except OSError:  # a full disk must not stop training; the events still carry the round
            pass

    def _append(self, line: str) -> None:
        if self._lines is None:
            self._lines = len(read_history(self.path, limit=None))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._lines += 1
        if self._lines > 2 * self.keep:
            rows = read_history(self.path, limit=self.keep)
            write_private(self.path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode())
            self._lines = len(rows)


def _row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or type(row.get("round")) is not int:
        return None
    for key in _NUMBERS:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return None
    return row


def read_history(path, limit: int | None = KEEP) -> list[dict]:
    """The last ``limit`` well-formed rows (all with None); [] when there is no history. A damaged
    line (a partial last one, garbage) is skipped, never an error."""
    try:
        raw = read_bounded(path, MAX_BYTES)
    except (OSError, FileTooLarge):
        return []
    rows = [row for line in raw.decode("utf-8", "replace").splitlines() if (row := _row(line)) is not None]
    return rows if limit is None else rows[-limit:]
