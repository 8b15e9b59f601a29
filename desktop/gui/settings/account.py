"""Account: who is signed in to the login server, and a way to sign out.

The status comes from the login server's public ``/login/status`` when the caller knows its
URL (it runs only while the local services do), and otherwise from ``login/userData.json`` in
the data dir, which is the session itself. Signing out is the main window's job (it owns the
services), so the page only calls the callback it is given.
"""

from __future__ import annotations

import json
from typing import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from desktop.chain.profiles import read_user_data, user_data_path
from desktop.gui.context import AppContext

from .base import SettingsPage


def signed_in_user(ctx: AppContext) -> dict | None:
    """The signed-in account from userData.json ({orgId, address, userId, email}), or None."""
    first = read_user_data(user_data_path(ctx.paths.data))
    entry = first[1] if first is not None else None
    return entry if isinstance(entry, dict) and entry.get("orgId") else None


class AccountPage(SettingsPage):
    title = "Account"
    icon_name = "system-users"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 on_logout: Callable[[], None] | None = None, status_url: str | None = None):
        super().__init__(ctx, parent)
        self.on_logout = on_logout
        self.status_url = status_url  # e.g. http://127.0.0.1:3000/login/status
        self._net: QNetworkAccessManager | None = None
        self.info: dict | None = None
        form = self.add_form()
        self.state = QLabel()
        self.email = QLabel()
        self.address = QLabel()
        self.peers = QLabel()
        for label in (self.email, self.address, self.peers):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Status", self.state)
        form.addRow("Email", self.email)
        form.addRow("Address", self.address)
        form.addRow("Peers", self.peers)
        self.logout = QPushButton("Log out")
        self.logout.clicked.connect(self._logout_clicked)
        self._layout.addWidget(self.logout)
        self.add_note("Your account key stays on this computer. Logging out ends the session; "
                      "signing in again with the same email gets the same account.")
        self.finish()

    def load(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Show userData.json now; then, if the server is known, its answer when it comes."""
        self.set_status(signed_in_user(self.ctx))
        if self.status_url:
            if self._net is None:
                self._net = QNetworkAccessManager(self)
            request = QNetworkRequest(QUrl(self.status_url))
            request.setTransferTimeout(3000)
            reply = self._net.get(request)
            reply.finished.connect(lambda r=reply: self._status_reply(r))

    def _status_reply(self, reply: QNetworkReply) -> None:
        reply.deleteLater()
        if reply.error() != QNetworkReply.NetworkError.NoError:
            return  # server down: the file already shown is the best we know
        try:
            data = json.loads(bytes(reply.readAll().data()).decode("utf-8"))
        except ValueError:
            return
        self.set_status(data if data.get("signedIn") else None)

    def set_status(self, info: dict | None) -> None:
        """Show an account ({email, address, orgId, peers?}) or, with None, "signed out"."""
        self.info = info
        signed_in = info is not None
        self.state.setText("Signed in" if signed_in else "Signed out")
        self.email.setText((info or {}).get("email", "") or "—")
        self.address.setText((info or {}).get("address", "") or "—")
        peers = (info or {}).get("peers")
        self.peers.setText(", ".join(peers) if peers else "—")
        self.logout.setEnabled(signed_in and self.on_logout is not None)

    def _logout_clicked(self) -> None:
        if self.on_logout is not None:
            self.on_logout()
        self.refresh()
