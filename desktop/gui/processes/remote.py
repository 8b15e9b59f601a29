"""A node on another machine, attached through its web dashboard (File > Connect to a node…).

The user opens an SSH tunnel to the node's dashboard and gives the app its URL with the token
(``http://127.0.0.1:8787/?token=…``). ``RemoteNode`` then stands where the app's own node
supervisor stands for a window: the same signals (state, status, events), fed by the node's own
events read from ``/api/events`` every second (the dashboard's history first, from
``/api/state``), and the same commands sent to ``/api/control``: pause (now, after the round,
until a time), resume, finish the round and stop, stop. It never starts or kills anything here,
and closing the window leaves the node running. Qt's network access only: nothing blocks.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, urlparse

from PySide6.QtCore import QByteArray, QObject, QTimer, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest

from desktop.events import EventError, validate
from desktop.events.status import NodeStatus
from desktop.gui.processes.outcome import ProcState
from desktop.machine.pause_control import UserPause

POLL_MS = 1000
TIMEOUT_MS = 10_000
MAX_REPLY = 8 * 1024 * 1024


class AttachError(ValueError):
    """A dashboard URL the app cannot use; the message is for the user."""


def parse_dashboard_url(text: str) -> tuple[str, str]:
    """(base URL, token) of ``http://host:port/?token=…``; AttachError for anything else."""
    url = urlparse((text or "").strip())
    token = (parse_qs(url.query).get("token") or [""])[0]
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AttachError("that is not the dashboard's address (it looks like http://127.0.0.1:8787/?token=…)")
    if len(token) < 32:
        raise AttachError("the address has no token: copy the whole URL the node printed, ?token=… included")
    return f"{url.scheme}://{url.netloc}", token


class _RemotePause:
    """The attached node's pause, as the window's pause actions read and set it."""

    def __init__(self, node: "RemoteNode") -> None:
        self.node = node

    def read(self) -> UserPause:
        return UserPause("now") if self.node.status.paused == "user" else UserPause()

    def pause(self, when: str, until: float | None) -> None:
        self.node.command("pause", when=when, until=until)

    def resume(self) -> None:
        self.node.command("resume")


class RemoteNode(QObject):
    state_changed = Signal(object)   # ProcState
    status_changed = Signal(object)  # NodeStatus (a snapshot)
    event = Signal(object)           # dict: one of the node's events
    log_line = Signal(str, str)      # what the app itself has to say about the link
    finished = Signal(object)
    restarting = Signal(int, float)
    gave_up = Signal(object)
    said = Signal(str, str)          # (title, text): a command's answer or a broken link, for a notice

    can_start = False  # it runs elsewhere: the window's Start stays off

    def __init__(self, url: str, parent: QObject | None = None, *, poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.base, self.token = parse_dashboard_url(url)
        self.label = "this peer"
        self.status = NodeStatus(state="connecting")
        self.pause_store = _RemotePause(self)
        self._state = ProcState.STARTING
        self._after = 0
        self._attached = False  # the node's state read once: from then on, its events
        self._net = QNetworkAccessManager(self)
        self._busy = False
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self._poll)

    # ---- what a window asks of a node ----------------------------------------------------------
    @property
    def state(self) -> ProcState:
        return self._state

    def connect_now(self) -> None:
        """Read the node's state (its history, its name) once, then its events every second."""
        self._get("/api/state", self._on_state)

    def start(self) -> None:
        if self.status.paused == "user":  # the nearest thing to Start for a node elsewhere
            self.command("resume")

    def stop(self) -> None:
        self.command("stop")

    def finish_round_then_stop(self) -> None:
        self.command("finish")

    def shutdown(self, timeout: float | None = None) -> None:
        """The window closes: stop listening. The node itself goes on."""
        self._timer.stop()

    def command(self, action: str, **params) -> None:
        body = {"peer": self.label, "action": action, **params}
        request = self._request("/api/control")
        request.setHeader(QNetworkRequest.ContentTypeHeader, "application/json")
        reply = self._net.post(request, QByteArray(json.dumps(body).encode()))
        reply.finished.connect(lambda: self._on_command(reply, action))

    # ---- the link --------------------------------------------------------------------------------
    def _request(self, path: str) -> QNetworkRequest:
        request = QNetworkRequest(QUrl(self.base + path))
        request.setRawHeader(b"X-Dashboard-Token", self.token.encode())
        request.setTransferTimeout(TIMEOUT_MS)
        return request

    def _get(self, path: str, then) -> None:
        self._busy = True
        reply = self._net.get(self._request(path))
        reply.finished.connect(lambda: self._answer(reply, then))

    def _answer(self, reply: QNetworkReply, then) -> None:
        self._busy = False
        body = bytes(reply.read(MAX_REPLY))
        status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
        error = reply.error()
        reply.deleteLater()
        if status == 401:
            return self._broken("The node refused the token", "Copy the dashboard's URL again, ?token=… included.")
        if error != QNetworkReply.NoError or status != 200:
            return self._broken("Cannot reach the node", f"{reply.errorString()} — is the SSH tunnel open "
                                                         f"(ssh -L PORT:127.0.0.1:PORT user@host)?")
        try:
            then(json.loads(body))
        except (ValueError, KeyError, TypeError, IndexError):
            self._broken("Not a node's dashboard", f"{self.base} answered something else")

    def _broken(self, title: str, text: str) -> None:
        self.log_line.emit("stderr", f"{title}: {text}")
        if self._state is not ProcState.CRASHED:
            self.said.emit(title, text)
            self.status.state = "cannot reach the node"
            self._set_state(ProcState.CRASHED)
            self.status_changed.emit(self.status.snapshot())
        if not self._timer.isActive():
            self._timer.start()  # keep trying: a tunnel that comes back is picked up

    def _on_state(self, data: dict) -> None:
        """Where the node is now; its events are read from here on (``seq``)."""
        peer = data["peers"][0]
        s = self.status
        self.label = str(peer["label"])
        s.load_history([row for row in peer["history"] if isinstance(row, dict)])
        s.peer_id, s.name, s.model, s.device = (str(peer.get(k) or "") for k in ("peer_id", "name", "model", "device"))
        s.round, s.paused, s.state = peer.get("round"), peer.get("paused"), str(peer.get("activity") or "")
        s.total_reward = float(peer.get("total_reward") or 0.0)
        s.skill = peer.get("skill") if isinstance(peer.get("skill"), dict) else None
        self._after = int(peer.get("seq") or 0)
        self._attached = True
        self._set_state(ProcState.STOPPED if peer.get("exit") else ProcState.RUNNING)
        self.status_changed.emit(s.snapshot())
        self._timer.start()
        self._poll()

    def _poll(self) -> None:
        if self._busy:
            return
        if not self._attached:
            self.connect_now()
        else:
            self._get(f"/api/events?peer={quote(self.label)}&after={self._after}", self._on_events)

    def _on_events(self, data: dict) -> None:
        self._after = int(data["next"])
        changed = False
        for raw in data["events"]:
            try:
                ev = validate(raw)
            except EventError:
                continue  # a newer node's event this app does not know
            self.event.emit(ev)
            changed |= self.status.apply(ev)
            if ev["type"] == "node_stopped":
                self._set_state(ProcState.STOPPED)
            elif ev["type"] == "node_started":
                self._set_state(ProcState.RUNNING)
        if self._state is ProcState.CRASHED:  # the link is back
            self._set_state(ProcState.STOPPED if self.status.state == "stopping" else ProcState.RUNNING)
        if changed or not data["events"]:
            self.status_changed.emit(self.status.snapshot())

    def _on_command(self, reply: QNetworkReply, action: str) -> None:
        body = bytes(reply.read(65536))
        reply.deleteLater()
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        if data.get("ok"):
            self.said.emit("Sent to the node", str(data["ok"]))
        else:
            self.said.emit(f"The node did not {action}", str(data.get("error") or reply.errorString()))

    def _set_state(self, state: ProcState) -> None:
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state)
            self.status_changed.emit(self.status.snapshot())
