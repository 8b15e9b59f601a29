"""Pause for an hour, until tomorrow, after this round; resume: the tray's and the Node menu's
snooze actions. They write the user's pause file (desktop.machine.pause_control), which the node reads
within seconds, so a pause needs no restart and outlives one; `rl-swarm pause` writes the same
file, and a timer keeps the actions in step with what is on disk."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction

from desktop.machine import pause_control


class FilePause:
    """The user's pause of a node on this machine: its data dir's pause file."""

    def __init__(self, data_dir: Path) -> None:
        self.path = pause_control.control_path(data_dir)

    def read(self) -> pause_control.UserPause:
        return pause_control.read(self.path)

    def pause(self, when: str, until: float | None) -> None:
        pause_control.pause(self.path, when, until)

    def resume(self) -> None:
        pause_control.resume(self.path)


class PauseActions(QObject):
    """``store``: where the pause is kept (a FilePause here, or an attached node's, which sends
    the commands to its dashboard): read(), pause(when, until), resume()."""

    changed = Signal(str)  # the label for the current pause ("" when not paused by the user)

    def __init__(self, parent: QObject, store, *, poll_ms: int = 5000) -> None:
        super().__init__(parent)
        self.store = store
        self.hour = QAction("Pause for &1 hour", self)
        self.tomorrow = QAction("Pause until &tomorrow (08:00)", self)
        self.after_round = QAction("Pause &after this round", self)
        self.after_round.setToolTip("Let the round in progress finish, then wait until resumed")
        self.resume = QAction("&Resume", self)
        self.hour.triggered.connect(lambda: self.pause("now", time.time() + 3600))
        self.tomorrow.triggered.connect(lambda: self.pause("now", pause_control.tomorrow_morning()))
        self.after_round.triggered.connect(lambda: self.pause("after-round", None))
        self.resume.triggered.connect(self.resume_now)
        self.label = ""
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sync)
        self._timer.start(poll_ms)
        self.sync()

    def all(self) -> list[QAction]:
        return [self.hour, self.tomorrow, self.after_round, self.resume]

    def pause(self, when: str, until: float | None) -> None:
        try:
            self.store.pause(when, until)
        except (OSError, pause_control.ControlFileError):
            pass  # the data folder is gone or read-only, or holds no pause file: the menu stays as it was
        self.sync()

    def resume_now(self) -> None:
        try:
            self.store.resume()
        except (OSError, pause_control.ControlFileError):
            pass
        self.sync()

    def sync(self) -> None:
        current = self.store.read()
        active = current.active()
        self.resume.setEnabled(active)
        if not active:
            label = ""
        elif current.until is not None:
            label = f"Paused until {time.strftime('%a %H:%M', time.localtime(current.until))}"
        elif current.when == "after-round":
            label = "Pausing after this round"
        else:
            label = "Paused until you resume"
        self.resume.setText(f"&Resume ({label[0].lower() + label[1:]})" if label else "&Resume")
        if label != self.label:
            self.label = label
            self.changed.emit(label)
