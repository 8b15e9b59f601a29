"""The user's pause, kept in ``<data dir>/control.json`` so every front end says the same thing.

The app's tray and settings, ``rl-swarm pause`` / ``rl-swarm resume`` and a node in another
process all read and write this one small file; the node's governor looks at it every few
seconds, so a pause reaches a running node without a restart and survives one (a paused node
that is restarted stays paused, as volunteer-computing clients do). Light: no torch, no Qt.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from desktop.utils.fsutil import read_bounded, write_private

log = logging.getLogger(__name__)

CONTROL_NAME = "control.json"
WHEN = ("now", "after-round")
MAX_BYTES = 4096  # what we write is ~60 bytes; anything larger is not ours


@dataclass(frozen=True)
class UserPause:
    when: str | None = None      # "now" / "after-round"; None: not paused by the user
    until: float | None = None   # epoch seconds; None: until resumed

    def active(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.when is not None and (self.until is None or now < self.until)


def control_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / CONTROL_NAME


class ControlFileError(ValueError):
    """Something other than a regular file sits where the pause is kept; the message says what."""


_warned: set[str] = set()


def _not_a_file(path: Path) -> ControlFileError | None:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None  # missing: no pause
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
            else "a link" if stat.S_ISLNK(mode) else "not a regular file")
    return ControlFileError(f"{path} is {kind}, not the pause file: remove it (the node treats it as no pause)")


def read(path: str | os.PathLike) -> UserPause:
    """The pause on file; a missing, unreadable or foreign file is no pause (never an error:
    a node must not stop because someone wrote nonsense next to its data). Something that is not
    a regular file is said once in the log."""
    path = Path(path)
    try:  # never blocks, never follows a link, never reads more than MAX_BYTES + 1
        data = json.loads(read_bounded(path, MAX_BYTES, follow_links=False).decode("utf-8"))
    except (OSError, ValueError):  # FileTooLarge is a ValueError
        problem = _not_a_file(path)
        if problem is not None and str(path) not in _warned:
            _warned.add(str(path))
            log.warning("%s", problem)
        return UserPause()
    if not isinstance(data, dict) or data.get("when") not in WHEN:
        return UserPause()
    until = data.get("until")
    if isinstance(until, bool) or not isinstance(until, (int, float)) or until != until:
        until = None
    return UserPause(data["when"], float(until) if until is not None else None)


def pause(path: str | os.PathLike, when: str = "now", until: float | None = None) -> UserPause:
    if when not in WHEN:
        raise ValueError(f"when must be one of {WHEN}")
    path = Path(path)
    if (problem := _not_a_file(path)) is not None:
        raise problem
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"when": when, "until": until, "at": round(time.time(), 3)}
    write_private(path, json.dumps(record).encode())
    return UserPause(when, until)


def resume(path: str | os.PathLike) -> None:
    """ControlFileError when something other than the pause file is there (left untouched)."""
    if (problem := _not_a_file(Path(path))) is not None:
        raise problem
    Path(path).unlink(missing_ok=True)


def parse_duration(text: str) -> float:
    """'90s', '30m', '1h', '2d' or a bare number of minutes, as seconds (ValueError otherwise)."""
    text = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 60)
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 1h, 2d)") from None
    if not (0 < value * unit <= 366 * 86400):
        raise ValueError(f"{text!r}: a pause lasts between 1 second and a year")
    return value * unit


def tomorrow_morning(now: float | None = None, hour: int = 8) -> float:
    """Epoch seconds of ``hour``:00 tomorrow, local time (the tray's "until tomorrow")."""
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, hour, 0, 0, 0, 0, -1))
