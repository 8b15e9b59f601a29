"""Every command the app offers, with one owner: the menu bar, the dashboard's buttons and the tray
menu only lay these actions out. Each action knows what it does and when it is enabled (from the
node's and the services' supervisors and the user's pause file), so every place offers the same
thing in the same state. Adding a command: make it here; then place it (menus.py, tray.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence

from desktop.gui import theme
from desktop.gui.processes.supervisor import ProcState
from desktop.gui.shell.pause_actions import FilePause, PauseActions


def open_folder(path: Path) -> None:
    """Show a folder in the system's file manager (made first: a new install has no logs yet)."""
    path.mkdir(parents=True, exist_ok=True)
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class ShellActions(QObject):
    def __init__(self, parent: QObject, *, data_dir: Path, logs_dir: Path, node=None, services=None) -> None:
        super().__init__(parent)
        self.node, self.services = node, services
        # the app
        self.open = QAction("&Open RL Swarm", self)
        self.quit = QAction("&Quit", self, shortcut=QKeySequence.Quit)
        self.open_data = QAction("Open &data folder", self)
        self.open_logs = QAction("Open &log folder", self)
        self.open_data.triggered.connect(lambda: open_folder(data_dir))
        self.open_logs.triggered.connect(lambda: open_folder(logs_dir))
        self.join = QAction("&Join a swarm…", self)
        self.host = QAction("&Host a swarm…", self)
        self.connect_node = QAction("&Connect to a node…", self)
        self.connect_node.setToolTip("Watch and steer a node on another machine through its dashboard (an SSH tunnel)")
        # the node
        self.start = QAction("&Start", self, shortcut=QKeySequence("Ctrl+R"))
        self.start.setToolTip("Start the node and join the swarm")
        self.finish = QAction("&Finish round and stop", self)
        self.finish.setToolTip("Let the current round finish (and be saved), then stop")
        self.stop = QAction("S&top", self)
        self.stop.setToolTip("Stop now (the round in progress is lost)")
        # hour, tomorrow, after_round, resume: this data dir's pause file, or an attached node's own
        self.pause = PauseActions(self, getattr(node, "pause_store", None) or FilePause(data_dir))
        if node is not None:
            self.start.triggered.connect(node.start)
            self.stop.triggered.connect(node.stop)
            self.finish.triggered.connect(node.finish_round_then_stop)
            node.state_changed.connect(self.sync)
            # a pause or resume the node reports (by the app, the CLI or its own schedule) shows at once
            node.event.connect(lambda ev: self.pause.sync() if ev.get("type") in ("paused", "resumed") else None)
        # the local services (the local profile's chain, login server and round keeper)
        self.services_start = QAction("Start &local services", self)
        self.services_stop = QAction("Stop l&ocal services", self)
        if services is not None:
            self.services_start.triggered.connect(services.start)
            self.services_stop.triggered.connect(services.stop)
            services.state_changed.connect(self.sync)
        self.sync()

    def for_an_attached_node(self) -> None:
        """The window of a node elsewhere: nothing of this machine's (folders, swarms, services)."""
        for action in (self.open_data, self.open_logs, self.join, self.host, self.connect_node,
                       self.services_start, self.services_stop):
            action.setVisible(False)
        self.quit.setText("&Close")

    def node_commands(self) -> list[QAction]:
        return [self.start, self.finish, self.stop]

    def sync(self, *_args) -> None:
        node = self.node.state if self.node is not None else None
        startable = getattr(self.node, "can_start", True)  # an attached node runs elsewhere: never started here
        self.start.setEnabled(startable and node in (ProcState.STOPPED, ProcState.CRASHED))
        self.stop.setEnabled(node in (ProcState.STARTING, ProcState.RUNNING, ProcState.CRASHED))
        self.finish.setEnabled(node is ProcState.RUNNING)
        services = self.services.state if self.services is not None else None
        self.services_start.setEnabled(services in (ProcState.STOPPED, ProcState.CRASHED))
        self.services_stop.setEnabled(services in (ProcState.STARTING, ProcState.RUNNING, ProcState.CRASHED))
        pal = theme.current()
        self.start.setIcon(theme.icon("play", pal.accent_text if self.start.isEnabled() else pal.muted, 32))
        self.stop.setIcon(theme.icon("stop", pal.error if self.stop.isEnabled() else pal.muted, 32))
        self.finish.setIcon(theme.icon("flag", pal.text if self.finish.isEnabled() else pal.muted, 32))
