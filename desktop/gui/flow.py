"""What happens once the window is up: first run, the local services, sign-in, then the node.

local profile: start the local chain + login server; when they are ready and someone is signed in
(now or after the login page), start the node. testnet profile: start the node straight away.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.gui.processes.supervisor import ProcState


class AppFlow(QObject):
    node_launched = Signal()

    def __init__(self, window, *, autostart_node: bool = True) -> None:
        super().__init__(window)
        self.window = window
        self.ctx = window.ctx
        self.autostart_node = autostart_node
        self._waiting_for_login = False
        if window.services is not None:
            window.services.ready.connect(self._on_services_ready)
        window.signed_in.connect(self._on_signed_in)

    def start(self) -> None:
        from desktop.gui.dialogs import first_run  # the wizard: built once, on a first run

        if first_run.needs_first_run(self.ctx):
            wizard = first_run.FirstRunWizard(self.ctx, self.window)
            self.window.first_run = wizard
            wizard.completed.connect(self._go)
            wizard.open()
        else:
            self._go()

    def _go(self) -> None:
        config = self.ctx.load_config()
        if config.profile in ("local", "swarm") and self.window.services is not None:
            self.window.show_notice("Starting", "Starting the local chain and login server…", "info")
            self.window.services.start()
        else:
            self.launch_node()

    def _on_services_ready(self, info) -> None:
        from desktop.gui.settings.account import signed_in_user  # the settings pages load when first needed

        if signed_in_user(self.ctx) is not None:
            self.launch_node()
        else:
            self._waiting_for_login = True  # the window shows the login page

    def _on_signed_in(self) -> None:
        if self._waiting_for_login:
            self._waiting_for_login = False
            self.launch_node()

    def _running(self) -> list:
        return [c for c in (self.window.node, self.window.services)
                if c is not None and c.state not in (ProcState.STOPPED, ProcState.CRASHED)]

    def restart(self, limit_s: float = 60.0) -> None:
        """Stop the node and the services, then start again from the config (a new profile)."""
        for child in self._running():
            child.stop()
        deadline = time.monotonic() + limit_s

        def check() -> None:
            if self._running() and time.monotonic() < deadline:
                QTimer.singleShot(200, check)
            else:
                self._go()

        QTimer.singleShot(200, check)

    def launch_node(self) -> None:
        node = self.window.node
        if node is None or not self.autostart_node or node.state not in (ProcState.STOPPED, ProcState.CRASHED):
            return
        node.start()  # the same start as the Start button's: the supervisor adds the token itself
        self.node_launched.emit()
