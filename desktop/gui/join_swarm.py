"""File > Join a swarm…: paste the host's invite, `rl-swarm join` runs in the background, and on
success the app restarts its services and node on the swarm (AppFlow.restart). A refused invite
is one message in the window; nothing is changed (rl-swarm join saves nothing unless it worked)."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit

TIMEOUT_MS = 90_000


class JoinSwarm(QObject):
    joined = Signal(str)   # what `rl-swarm join` said ("joined 'lab' as 0x…")
    failed = Signal(str)   # why not, in its words

    def __init__(self, parent: QObject, command: Callable[[str], list[str]]) -> None:
        super().__init__(parent)
        self.command = command
        self.proc: QProcess | None = None
        self._limit = QTimer(self, singleShot=True, interval=TIMEOUT_MS)
        self._limit.timeout.connect(lambda: self.proc is not None and self.proc.kill())

    def ask(self, window) -> None:
        code, ok = QInputDialog.getText(window, "Join a swarm", "The invite code or link the host gave you:",
                                        QLineEdit.Normal, "")
        if ok and code.strip():
            self.run(code.strip())

    def run(self, code: str) -> bool:
        if self.proc is not None:
            return False  # one join at a time
        cmd = self.command(code)
        self.proc = QProcess(self)
        self.proc.finished.connect(self._done)
        self.proc.errorOccurred.connect(lambda *_: self._done(-1, None))
        self.proc.start(cmd[0], cmd[1:])
        self._limit.start()
        return True

    def _done(self, code, _status) -> None:
        proc, self.proc = self.proc, None
        self._limit.stop()
        if proc is None:
            return
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace").strip().splitlines()
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace").strip().splitlines()
        proc.deleteLater()
        if code == 0 and out:
            self.joined.emit(out[0])
        else:
            reason = err[-1] if err else "the join did not finish (the host did not answer in time)"
            self.failed.emit(reason.removeprefix("rl-swarm: "))
