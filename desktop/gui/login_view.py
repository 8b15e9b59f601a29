"""The sign-in page of the login server, inside the app.

rl-swarm users on VMs often cannot reach the login page at all; here it is a view in the app,
and when it cannot load the user gets a plain explanation and a Retry button instead of a blank
page. Completion is not read from the page: a callable that asks the login API says when the
user is signed in (the page is just a form). The callable runs in a worker thread, once per
tick at most, so a slow or hung server never freezes the window.

The login server only lets its own page sign in: the page gets this session's secret (read from
``secret_file`` at every load, as a restart of the services writes a new one) in the URL's
fragment, which the page's script sends back. ``url`` itself never holds it, since it is shown.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtWebEngineCore import QWebEngineLoadingInfo, QWebEnginePage
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

POLL_MS = 1000
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
AUTO_RETRIES = 2
# Without a check callable, the page's own status line is read instead.
_PAGE_STATUS_JS = "(function(){var e=document.getElementById('status');return e?e.textContent:'';})()"


def read_secret(path: Path | None) -> str:
    """The login server's session secret ("" when there is none yet)."""
    try:
        secret = Path(path).read_text(encoding="ascii").strip() if path else ""
    except (OSError, UnicodeDecodeError):
        return ""
    # token_urlsafe: anything else is not ours, and must not be pasted into a URL
    return secret if _SECRET.fullmatch(secret) else ""


class LoginView(QWidget):
    signed_in = Signal()
    load_failed = Signal(str)  # the message shown (also for the main window's log)

    def __init__(self, url: str, is_signed_in: Callable[[], bool] | None = None,
                 parent: QWidget | None = None, *, poll_ms: int = POLL_MS, secret_file: Path | None = None):
        super().__init__(parent)
        self.url = url
        self.secret_file = secret_file
        self.is_signed_in = is_signed_in
        self._done = False
        self._pending: Future | None = None
        self._auto_retries = AUTO_RETRIES

        self.view = QWebEngineView()
        self.view.page().loadingChanged.connect(self._loading_changed)
        self.view.page().renderProcessTerminated.connect(self._renderer_gone)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry)
        error_panel = QWidget()
        panel = QVBoxLayout(error_panel)
        panel.addStretch(1)
        panel.addWidget(self.error_label)
        panel.addWidget(self.retry_button)
        panel.addStretch(2)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(error_panel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._poll)
        self.timer.start()
        self.retry()

    # ---- loading ----
    @property
    def showing_error(self) -> bool:
        return self.stack.currentIndex() == 1

    def retry(self) -> None:
        self._auto_retries = AUTO_RETRIES
        self._load()

    def _load(self) -> None:
        self.stack.setCurrentIndex(0)
        url = QUrl(self.url)
        if secret := read_secret(self.secret_file):
            url.setFragment(f"s={secret}")
        self.view.load(url)

    def _loading_changed(self, info: QWebEngineLoadingInfo) -> None:
        # Richer than loadFinished(False): it says *why* (refused, DNS, HTTP 500 ...), and it
        # tells a failed load from one that was merely interrupted.
        status = info.status()
        if status == QWebEngineLoadingInfo.LoadStatus.LoadStoppedStatus and not self.showing_error:
            # Interrupted (a restarted helper process, a navigation race): try again quietly
            # a couple of times before bothering the user.
            if self._auto_retries > 0:
                self._auto_retries -= 1
                QTimer.singleShot(500, self._load)
            else:
                self._show_error("The page stopped loading.")
        elif status == QWebEngineLoadingInfo.LoadStatus.LoadFailedStatus:
            if info.errorDomain() == QWebEngineLoadingInfo.ErrorDomain.HttpStatusCodeDomain:
                self._show_error(f"The server answered HTTP {info.errorCode()}.")
            else:
                self._show_error(info.errorString())

    def _renderer_gone(self, status, exit_code: int) -> None:
        if status != QWebEnginePage.RenderProcessTerminationStatus.NormalTerminationStatus:
            self._show_error(f"The page's process stopped unexpectedly (code {exit_code}).")

    def _show_error(self, detail: str) -> None:
        message = (f"The sign-in page at {self.url} could not be loaded. The login server "
                   "starts with the local services: make sure they are running, then retry.")
        if detail:
            message += f"\n\n({detail})"
        self.error_label.setText(message)
        self.stack.setCurrentIndex(1)
        self.load_failed.emit(message)

    # ---- completion ----
    def _poll(self) -> None:
        if self._done:
            return
        if self._pending is not None:
            if self._pending.done():  # the last check came back: act on it, ask again next tick
                ok, self._pending = self._pending.result(), None
                self._on_checked(ok)
            return
        if self.is_signed_in is None:
            if not self.showing_error:
                self.view.page().runJavaScript(_PAGE_STATUS_JS, 0,
                                               lambda text: self._on_checked(text == "signed in"))
            return
        # The thread only fills a Future; all Qt work stays on this thread, so a view closed
        # while a check is out is never touched from elsewhere.
        self._pending = Future()
        threading.Thread(target=self._check, args=(self.is_signed_in, self._pending),
                         name="login-check", daemon=True).start()

    @staticmethod
    def _check(is_signed_in: Callable[[], bool], future: Future) -> None:
        try:
            ok = bool(is_signed_in())
        except Exception:  # server down or mid-restart: just "not yet"
            ok = False
        future.set_result(ok)

    def _on_checked(self, ok: bool) -> None:
        if ok and not self._done:
            self._done = True
            self.timer.stop()
            self.signed_in.emit()

    def stop(self) -> None:
        """Stop polling (the owner closes the view or no longer cares)."""
        self.timer.stop()
        self._done = True

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)

