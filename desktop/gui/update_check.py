"""The app's side of desktop.utils.updates: check in a worker thread a while after start, show "version X
is available" with the notes and a Download button, download (sha256-checked) into the user's
Downloads folder and show it there. Installing stays the user's own step."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from desktop import __version__
from desktop.utils import updates

CHECK_DELAY_MS = 15_000  # not during start-up: the window and the node come first


class UpdateCheck(QObject):
    found = Signal(object)        # updates.Update
    downloaded = Signal(object)   # Path
    failed = Signal(str)

    def __init__(self, window, *, current: str = __version__, downloads: Path | None = None) -> None:
        super().__init__(window)
        self.window, self.ctx, self.current = window, window.ctx, current
        folder = QStandardPaths.writableLocation(QStandardPaths.DownloadLocation) or str(Path.home())
        self.downloads = downloads or Path(folder)
        self.found.connect(self._offer)
        self.downloaded.connect(self._done)
        self.failed.connect(lambda text: self.window.show_notice("Update not downloaded", text, "error"))

    def start(self, delay_ms: int = CHECK_DELAY_MS) -> None:
        QTimer.singleShot(delay_ms, self.check_now)

    def check_now(self) -> threading.Thread:
        config = self.ctx.load_config().updates
        state = self.ctx.paths.data / "update-check.json"

        def work() -> None:
            update = updates.check(config.feed_url, self.current, state, enabled=config.check)
            if update is not None:
                self.found.emit(update)  # queued to the GUI thread

        thread = threading.Thread(target=work, name="update-check", daemon=True)
        thread.start()
        return thread

    def _offer(self, update: updates.Update) -> None:
        notes = f" {update.notes}" if update.notes else ""
        self.window.show_notice(f"Version {update.version} is available", f"You have {self.current}.{notes}",
                                "info", timeout_ms=0, action=("Download", lambda: self.download(update)))

    def download(self, update: updates.Update) -> threading.Thread:
        def work() -> None:
            try:
                self.downloaded.emit(updates.download(update, self.downloads))
            except updates.UpdateError as exc:
                self.failed.emit(str(exc))

        self.window.show_notice("Downloading", f"Version {update.version} to {self.downloads}…", "info")
        thread = threading.Thread(target=work, name="update-download", daemon=True)
        thread.start()
        return thread

    def _done(self, path: Path) -> None:
        self.window.show_notice("Update downloaded", f"{path.name} is in {path.parent}: open it to install "
                                "(your peer, login and settings are kept).", "ok", timeout_ms=0,
                                action=("Show", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))))
