"""File > Join a swarm…: paste the host's invite, `rl-swarm join` runs in the background, and on
success the app restarts its services and node on the swarm (AppFlow.restart). A refused invite
is one message in the window; nothing is changed (rl-swarm join saves nothing unless it worked)."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit

from desktop.gui.processes.background import BackgroundCommand

TIMEOUT_MS = 90_000


class JoinSwarm(QObject):
    joined = Signal(str)   # what `rl-swarm join` said ("joined 'lab' as 0x…")
    failed = Signal(str)   # why not, in its words

    def __init__(self, parent: QObject, command: Callable[[str], list[str]]) -> None:
        super().__init__(parent)
        self.command = command
        self.child = BackgroundCommand(self, TIMEOUT_MS)
        self.child.done.connect(self._done)

    def ask(self, window) -> None:
        code, ok = QInputDialog.getText(window, "Join a swarm", "The invite code or link the host gave you:",
                                        QLineEdit.Normal, "")
        if ok and code.strip():
            self.run(code.strip())

    def run(self, code: str) -> bool:
        return self.child.run(self.command(code))  # one join at a time

    def _done(self, code: int, out: bytes, err: list, _timed_out: bool) -> None:
        said = out.decode("utf-8", "replace").strip().splitlines()
        if code == 0 and said:
            self.joined.emit(said[0])
        else:
            reason = err[-1] if err else "the join did not finish (the host did not answer in time)"
            self.failed.emit(reason.removeprefix("rl-swarm: "))
