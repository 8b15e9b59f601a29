"""File > Host a swarm…: open this computer's local swarm to other machines, and invite them.

Starting saves config ``hosting`` (name, address, ports) with the node on the DHT at that
interface, and the app restarts its services and node (AppFlow.restart): the services then also
run the chain proxy, the join desk and a bootnode (desktop.services.host) and say so with a
``hosting`` event. The dialog shows where others reach the swarm and whether its ports answer,
explains port forwarding, and makes invites (`rl-swarm host invite`, in the background) as a
code, a link and a QR code. Stop hosting saves ``enabled: false`` and restarts again.
"""

from __future__ import annotations

import io
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QMessageBox, QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from desktop.gui.processes.background import BackgroundCommand

TIMEOUT_MS = 60_000
EXPIRIES = [("1 hour", "1h"), ("1 day", "24h"), ("1 week", "7d")]


def qr_pixmap(text: str, size: int = 240) -> QPixmap:
    """The text as a QR code about ``size`` pixels wide, whole pixels per module (segno, pure
    Python); an empty pixmap when segno is missing."""
    try:
        import segno  # optional (the gui extra): without it the dialog shows the code and the link only
    except ImportError:
        return QPixmap()
    code = segno.make(text, error="l")  # a screen is not a dirty label: the lowest correction, fewer modules
    width, _ = code.symbol_size(scale=1, border=2)
    out = io.BytesIO()
    code.save(out, kind="png", scale=max(1, size // width), border=2)
    pixmap = QPixmap()
    pixmap.loadFromData(out.getvalue(), "PNG")
    return pixmap


def preflight_text(ev: dict | None, hosting: bool) -> str:
    """What the last `hosting` event says, for a person."""
    if not hosting:
        return ("Your chain, login server and round keeper stay on this computer. Other machines reach only "
                "a filtering chain proxy (no admin methods), a join desk that funds a joiner once per invite, "
                "and a bootnode, on the ports below.")
    if ev is None:
        return "Opening the swarm to other machines…"
    if ev.get("error"):
        return f"Not hosting: {ev['error']}"
    yes = lambda ok: "answers" if ok else "does NOT answer"  # noqa: E731
    text = (f"Others reach '{ev['name']}' at {ev['address']}: the chain proxy {yes(ev['rpc_answers'])}, "
            f"the bootnode {yes(ev['dht_answers'])} (checked from this computer).")
    advice = (" When the other machines are not on your network, forward these two TCP ports on your router "
              "to this computer and put the router's public address in 'Address others use'. A joiner can "
              "check from their side with `rl-swarm join --check CODE`.")
    return text + advice


class HostDialog(QDialog):
    start_hosting = Signal(dict)  # {"name", "advertise", "port", "dht_port"}
    stop_hosting = Signal()

    def __init__(self, parent: QWidget | None, settings, invite_command: Callable[[int, str], list[str]],
                 last_event: dict | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Host a swarm")
        self.setMinimumWidth(560)
        self.invite_command = invite_command
        self.hosting = bool(settings.enabled)
        self.invite_job = BackgroundCommand(self, TIMEOUT_MS)
        self.invite_job.done.connect(self._made)
        col = QVBoxLayout(self)
        self.preflight = QLabel(preflight_text(last_event, self.hosting))
        self.preflight.setWordWrap(True)
        col.addWidget(self.preflight)
        form = QFormLayout()
        self.name = QLineEdit(settings.name)
        self.advertise = QLineEdit(settings.advertise or "")
        self.advertise.setPlaceholderText("this computer's network address (automatic)")
        self.port = QSpinBox(minimum=1, maximum=65535, value=settings.port)
        self.dht_port = QSpinBox(minimum=1, maximum=65535, value=settings.dht_port)
        for label, field in (("Swarm name", self.name), ("Address others use", self.advertise),
                             ("Chain proxy port", self.port), ("Bootnode port", self.dht_port)):
            form.addRow(label, field)
            field.setEnabled(not self.hosting)
        col.addLayout(form)
        self.invite_box = QWidget()
        self._build_invite(self.invite_box)
        self.invite_box.setVisible(self.hosting)
        col.addWidget(self.invite_box)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.toggle = buttons.addButton("Stop hosting" if self.hosting else "Start hosting",
                                        QDialogButtonBox.ActionRole)
        self.toggle.clicked.connect(self._toggle)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        if self.hosting:
            self.show_event(last_event)

    def _build_invite(self, box: QWidget) -> None:
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 8, 0, 0)
        row = QHBoxLayout()
        self.uses = QSpinBox(minimum=1, maximum=1000, value=1)
        self.expiry = QComboBox()
        for label, value in EXPIRIES:
            self.expiry.addItem(label, value)
        self.expiry.setCurrentIndex(1)
        self.make = QPushButton("Make an invite")
        self.make.clicked.connect(self.make_invite)
        for widget in (QLabel("Uses"), self.uses, QLabel("Valid for"), self.expiry, self.make):
            row.addWidget(widget)
        row.addStretch(1)
        col.addLayout(row)
        self.code = QPlainTextEdit(readOnly=True)
        self.code.setPlaceholderText("The invite appears here: send the code or the link to whoever joins "
                                     "(File > Join a swarm… in their app).")
        self.code.setMaximumHeight(90)
        col.addWidget(self.code)
        row = QHBoxLayout()
        self.qr = QLabel()
        self.copy = QPushButton("Copy the code")
        self.copy.setEnabled(False)
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.invite_code))
        row.addWidget(self.qr)
        row.addWidget(self.copy)
        row.addStretch(1)
        col.addLayout(row)
        self.invite_code = ""

    def show_event(self, ev: dict | None) -> None:
        self.preflight.setText(preflight_text(ev, self.hosting))
        if ev and ev.get("address") and not self.advertise.text():
            self.advertise.setText(ev["address"])  # what was chosen automatically

    def _toggle(self) -> None:
        if self.hosting:
            self.stop_hosting.emit()
        else:
            self.start_hosting.emit({"name": self.name.text().strip() or "swarm",
                                     "advertise": self.advertise.text().strip() or None,
                                     "port": self.port.value(), "dht_port": self.dht_port.value()})
        self.accept()

    # ---- an invite, from `rl-swarm host invite` ---------------------------------------------------
    def make_invite(self) -> bool:
        if not self.invite_job.run(self.invite_command(self.uses.value(), self.expiry.currentData())):
            return False  # one at a time
        self.make.setEnabled(False)
        return True

    def _made(self, code: int, out: bytes, err: list, _timed_out: bool) -> None:
        self.make.setEnabled(True)
        # `rl-swarm host invite` prints the code, then the link, then a line about the invite
        words = out.decode("utf-8", "replace").split()
        links = [w for w in words if w.startswith("rlswarm://")]
        found = words[:1] if words and not words[0].startswith("rlswarm://") else []
        if code != 0 or not found:
            self.code.setPlainText((err[-1] if err else "no invite was made").removeprefix("rl-swarm: "))
            return
        self.invite_code = found[0]
        self.code.setPlainText(f"{found[0]}\n\n{links[0] if links else ''}")
        self.qr.setPixmap(qr_pixmap(found[0]))  # the code alone: Join a swarm… takes it as the link
        self.copy.setEnabled(True)


class HostSwarm(QObject):
    """The menu action's controller: keeps the services' last `hosting` event, opens the dialog,
    saves the choice and asks for a restart (``changed``)."""

    changed = Signal(str)  # a notice's text: hosting started or stopped

    def __init__(self, parent: QObject, ctx, services=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.last_event: dict | None = None
        self.dialog: HostDialog | None = None
        if services is not None:
            services.hosting.connect(self._on_hosting)

    def _on_hosting(self, ev: dict) -> None:
        self.last_event = ev
        if self.dialog is not None:
            self.dialog.show_event(ev)

    def ask(self, window) -> HostDialog | None:
        config = self.ctx.load_config()
        if config.profile != "local":
            QMessageBox.information(window, "Host a swarm", f"This app is on the {config.profile} profile: only "
                                    "the local swarm can be hosted. Switch to the local profile in Settings first.")
            return None
        self.dialog = HostDialog(window, config.hosting, self.ctx.host_invite_command,
                                 self.last_event if config.hosting.enabled else None)
        self.dialog.start_hosting.connect(self.start)
        self.dialog.stop_hosting.connect(self.stop)
        self.dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog.open()
        return self.dialog

    def start(self, choice: dict) -> None:
        config = self.ctx.load_config()
        for key, value in choice.items():
            setattr(config.hosting, key, value)
        config.hosting.enabled = True
        config.swarm.enabled = True
        config.swarm.host = config.hosting.bind  # the app's own peer must be reachable too
        self.last_event = None
        self.ctx.save_config(config)
        self.changed.emit(f"Hosting '{config.hosting.name}': restarting the local swarm open to others…")

    def stop(self) -> None:
        config = self.ctx.load_config()
        config.hosting.enabled = False
        config.swarm.host = "127.0.0.1"
        self.last_event = None
        self.ctx.save_config(config)
        self.changed.emit("Stopped hosting: restarting the local swarm for this computer only…")
