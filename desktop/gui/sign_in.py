"""Sign-in: the login server's page as a window page while the local services run and nobody is
signed in; it goes once someone is. Also the app's log-out, sent as that page would send it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkRequest
from PySide6.QtWidgets import QWidget

from desktop.gui import theme
from desktop.gui.settings.account import signed_in_user


def _secret_file(info) -> Path:
    # beside the API token; the name is desktop.services.login_server.SESSION_SECRET_FILE (not
    # imported: it would load aiohttp and web3 into the GUI)
    return Path(info.api_token_file).with_name("session_secret")


class SignIn(QObject):
    """Adds the "Sign in" page to ``window`` when ``services`` are ready and removes it once signed in."""

    signed_in = Signal()  # the user finished signing in on the login page

    def __init__(self, window, services=None) -> None:
        super().__init__(window)
        self.window, self.ctx, self.services = window, window.ctx, services
        self._net = None
        if services is not None:
            services.ready.connect(self._on_services_ready)

    def login_base(self) -> str:
        info = getattr(self.services, "info", None)
        return info.login_url.rstrip("/") if info is not None else ""

    def _on_services_ready(self, info) -> None:
        win = self.window
        if signed_in_user(self.ctx) is None and "login" not in win.pages:
            win.add_page("login", "Sign in", "nav-login",
                         factory=lambda: self._build_page(info.login_url, _secret_file(info)))
            win.show_notice("Sign in", "Sign in so your rewards can be submitted on chain.", "info")
            if win.current_page() == "dashboard":  # the node waits for it: go there (not away from
                win.show_page("login")            # a page the user opened)

    def _build_page(self, url: str, secret_file: Path | None = None) -> QWidget:
        from desktop.gui.login_view import LoginView  # QtWebEngine (Chromium): only while a sign-in is needed

        view = LoginView(f"{url.rstrip('/')}/?theme={theme.current().name}",
                         is_signed_in=lambda: signed_in_user(self.ctx) is not None, secret_file=secret_file)
        view.signed_in.connect(self._on_signed_in)
        themes = self.window.themes
        if themes is not None:  # the page follows the app's theme while it is open
            def follow(palette) -> None:
                try:
                    view.view.page().runJavaScript(f"window.rlSwarmTheme && rlSwarmTheme('{palette.name}')")
                except RuntimeError:  # the sign-in page is gone
                    themes.changed.disconnect(follow)
            themes.changed.connect(follow)
        return view

    def _on_signed_in(self) -> None:
        self.signed_in.emit()
        self.window.show_notice("Signed in", "Your account is linked to this peer.", "ok")
        self.window.show_page("dashboard")
        self.window.remove_page("login")

    def logout(self) -> None:
        base = self.login_base()
        if not base:
            return
        self._net = self._net or QNetworkAccessManager(self)
        request = QNetworkRequest(QUrl(base + "/login/logout"))
        request.setHeader(QNetworkRequest.ContentTypeHeader, "application/json")
        # the server lets only its own page (this session's secret) switch the account
        try:
            request.setRawHeader(b"X-Login-Session", _secret_file(self.services.info).read_bytes().strip())
        except OSError:
            pass  # refused then, and the account page still shows the session
        reply = self._net.post(request, b"{}")
        reply.finished.connect(reply.deleteLater)
