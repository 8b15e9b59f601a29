"""One `rl-swarm` child at a time, in the background and with a time limit, for the short commands
the window asks (`join`, `host invite`, `chain status --json`): the window never waits on it."""

from __future__ import annotations

from PySide6.QtCore import QObject, QProcess, QTimer, Signal


class BackgroundCommand(QObject):
    # exit code (-1: did not start or was killed), stdout, stderr's lines, killed for its time limit
    done = Signal(int, object, object, bool)

    def __init__(self, parent: QObject, limit_ms: int, max_stdout: int = 4 * 1024 * 1024) -> None:
        super().__init__(parent)
        self.max_stdout = max_stdout
        self.proc: QProcess | None = None
        self._timed_out = False
        self._limit = QTimer(self, singleShot=True, interval=limit_ms)
        self._limit.timeout.connect(self._too_slow)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def run(self, cmd: list[str]) -> bool:
        """Start ``cmd``; False (and nothing started) while the last one still runs."""
        if self.proc is not None:
            return False
        self._timed_out = False
        self.proc = QProcess(self)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(lambda *_: self._finished(-1, None))
        self.proc.start(cmd[0], cmd[1:])
        self._limit.start()
        return True

    def _too_slow(self) -> None:
        if self.proc is not None:
            self._timed_out = True
            self.proc.kill()

    def _finished(self, code, _status) -> None:
        proc, self.proc = self.proc, None  # errorOccurred and finished may both come: once only
        self._limit.stop()
        if proc is None:
            return
        out = bytes(proc.readAllStandardOutput())[:self.max_stdout]
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace").strip().splitlines()
        proc.deleteLater()
        self.done.emit(code, out, err, self._timed_out)
