"""The main window: a sidebar of pages, in-app notices, a status bar and the menus.

Pages other than the dashboard and logs are built the first time they are shown, so the window
paints fast and QtWebEngine (the sign-in page) is only loaded when someone needs it.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSettings, QSize, QTimer, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QApplication, QFrame, QHBoxLayout, QInputDialog, QLabel, QListWidget, QListWidgetItem, QMainWindow,
                               QStackedWidget, QVBoxLayout, QWidget)

from desktop import __version__
from desktop.gui import theme
from desktop.gui.context import AppContext
from desktop.gui.dialogs.host_swarm import HostSwarm
from desktop.gui.dialogs.join_swarm import JoinSwarm
from desktop.gui.pages.dashboard import DashboardPage
from desktop.gui.pages.logs import LogsPage
from desktop.gui.processes.supervisor import ProcState
from desktop.gui.processes.remote import AttachError, RemoteNode
from desktop.gui.shell.actions import ShellActions, open_folder
from desktop.gui.shell.menus import build_menus
from desktop.gui.shell.state_look import look
from desktop.gui.shell.tray import TrayController
from desktop.gui.sign_in import SignIn
from desktop.gui.widgets.cards import Notice
from desktop.gui.widgets.labels import ElidedLabel
from desktop.utils.frozen import self_command


NOTICE_MS = 7000


class MainWindow(QMainWindow):
    signed_in = Signal()  # the user finished signing in on the login page
    def __init__(self, ctx: AppContext, node=None, services=None, themes: theme.ThemeManager | None = None,
                 tray_available: bool = False, attached: bool = False) -> None:
        """``attached``: the window of a node on another machine (processes.remote.RemoteNode),
        opened by File > Connect to a node…: no settings, services or tray of its own, and
        closing it leaves that node running."""
        super().__init__()
        self.ctx, self.node, self.services, self.themes = ctx, node, services, themes
        self.attached = attached
        self.attached_windows: list[MainWindow] = []
        self.tray_available = tray_available
        self.settings_store = QSettings(str(ctx.gui_settings_file()), QSettings.IniFormat)
        self.setWindowTitle("RL Swarm")
        self.setWindowIcon(theme.icon("app", size=256))
        self.actions = ShellActions(self, data_dir=ctx.paths.data, logs_dir=ctx.paths.logs, node=node,
                                    services=services)
        self.actions.open.triggered.connect(self.bring_to_front)
        self.actions.quit.triggered.connect(self.request_quit)
        self.actions.join.triggered.connect(lambda: self.join.ask(self))
        self.actions.host.triggered.connect(lambda: self.host.ask(self))
        self.actions.connect_node.triggered.connect(self.ask_for_node)
        if attached:
            self.actions.for_an_attached_node()
        self.join = JoinSwarm(self, ctx.join_command)
        self.join.joined.connect(lambda said: self._restart("Joined a swarm", f"{said.capitalize()}. "
                                                                               "Restarting on the swarm…"))
        self.host = HostSwarm(self, ctx, services)
        self.host.changed.connect(lambda said: self._restart("Host a swarm", said))
        self.join.failed.connect(lambda why: self.show_notice("Could not join the swarm", why, "error"))
        self._quitting = False
        self.quit_app: Callable[[], None] = QApplication.quit  # tests replace it
        self._told_about_tray = False
        self.tray = TrayController(self, self.actions, node, available=tray_available)
        # the window's companions, made by build_window once the window exists (each needs it)
        self.flow = None        # AppFlow
        self.first_run = None   # FirstRunWizard, while it is open
        self.updates = None     # UpdateCheck
        self.notices: list[tuple[str, str, str]] = []  # every notice shown, oldest first

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_sidebar())
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        self.notice_area = QVBoxLayout()
        self.notice_area.setContentsMargins(20, 10, 20, 0)
        self.notice_area.setSpacing(6)
        right.addLayout(self.notice_area)
        self.stack = QStackedWidget()
        right.addWidget(self.stack, 1)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self.pages: dict[str, QWidget] = {}
        self._factories: dict[str, Callable[[], QWidget]] = {}
        self.dashboard = DashboardPage()
        self.dashboard.bind_actions((self.actions.start, "primary"), (self.actions.finish, ""),
                                    (self.actions.stop, "danger"))
        self.logs = LogsPage(ctx.paths.logs)
        self.add_page("dashboard", "Dashboard", "nav-dashboard", self.dashboard)
        self.add_page("swarm", "Swarm", "nav-swarm", factory=self._build_swarm)
        self.add_page("logs", "Logs", "nav-logs", self.logs)
        if not attached:
            self.add_page("settings", "Settings", "nav-settings", factory=self._build_settings)
        self._build_status_bar()
        build_menus(self)
        if node is not None:
            node.state_changed.connect(self._on_node_state)
            node.status_changed.connect(self._on_status)
            self.logs.connect_supervisor(node, "node")
            self._on_node_state(node.state)
        self.sign_in = SignIn(self, services)  # the sign-in page, while one is needed
        self.sign_in.signed_in.connect(self.signed_in)
        if services is not None:
            self.logs.connect_supervisor(services, "services")
            services.state_changed.connect(self._on_services_state)
        if themes is not None:
            themes.changed.connect(lambda _p: self.restyle())
        self.resize(QSize(1200, 780))
        geometry = self.settings_store.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        QTimer.singleShot(0, self._load_identity)  # after the first paint: it parses an RSA key

    # ---- layout pieces ----------------------------------------------------------------------------
    def _build_sidebar(self) -> QWidget:
        side = QFrame()
        side.setObjectName("sidebar")
        side.setFixedWidth(210)
        col = QVBoxLayout(side)
        col.setContentsMargins(0, 18, 0, 12)
        col.setSpacing(14)
        brand = QHBoxLayout()
        brand.setContentsMargins(18, 0, 12, 0)
        brand.setSpacing(10)
        logo = QLabel()
        logo.setPixmap(theme.pixmap("app", size=68))  # 2x, scaled down: crisp on HiDPI too
        logo.setFixedSize(34, 34)
        logo.setScaledContents(True)
        names = QVBoxLayout()
        names.setSpacing(0)
        title = QLabel("RL Swarm")
        title.setObjectName("brand")
        sub = QLabel("Desktop")
        sub.setObjectName("brandSub")
        names.addWidget(title)
        names.addWidget(sub)
        brand.addWidget(logo)
        brand.addLayout(names, 1)
        col.addLayout(brand)
        self.nav = QListWidget()
        self.nav.setIconSize(QSize(18, 18))
        self.nav.setFocusPolicy(Qt.NoFocus)
        self.nav.currentRowChanged.connect(self._on_nav)
        col.addWidget(self.nav, 1)
        version = QLabel(f"v{__version__}")
        version.setObjectName("brandSub")
        version.setContentsMargins(20, 0, 0, 0)
        col.addWidget(version)
        return side

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.status_state = QLabel("Node stopped")
        self.status_round = QLabel("")
        self.status_peers = QLabel("")
        self.status_news = ElidedLabel("")  # round-by-round news: seen in passing, never widens the window
        self.status_news.setObjectName("statusNews")
        self._news_timer = QTimer(self)
        self._news_timer.setSingleShot(True)
        self._news_timer.timeout.connect(lambda: self.status_news.setText(""))
        bar.addWidget(self.status_state, 1)
        bar.addPermanentWidget(self.status_news)
        bar.addPermanentWidget(self.status_round)
        bar.addPermanentWidget(self.status_peers)

    # ---- pages ------------------------------------------------------------------------------------
    def add_page(self, key: str, label: str, icon_name: str, widget: QWidget | None = None,
                 factory: Callable[[], QWidget] | None = None) -> None:
        """A sidebar entry; with ``factory`` the page is built when first shown."""
        holder = widget if widget is not None else QWidget()
        if widget is None:
            holder.setObjectName("page")
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self._factories[key] = factory
        self.pages[key] = holder
        self.stack.addWidget(holder)
        item = QListWidgetItem(label)
        item.setData(Qt.UserRole, key)
        item.setData(Qt.UserRole + 1, icon_name)
        self._tint(item)
        self.nav.addItem(item)
        if self.nav.currentRow() < 0:
            self.nav.setCurrentRow(0)

    def remove_page(self, key: str) -> None:
        page = self.pages.pop(key, None)
        if page is None:
            return
        for row in range(self.nav.count()):
            if self.nav.item(row).data(Qt.UserRole) == key:
                self.nav.takeItem(row)
                break
        self.stack.removeWidget(page)
        page.deleteLater()

    def page_names(self) -> list[str]:
        return [self.nav.item(row).data(Qt.UserRole) for row in range(self.nav.count())]

    def show_page(self, key: str) -> QWidget:
        row = self.page_names().index(key)
        self.nav.setCurrentRow(row)
        return self.page(key)

    def page(self, key: str) -> QWidget:
        """The page's content, built now if it was deferred."""
        holder = self.pages[key]
        factory = self._factories.pop(key, None)
        if factory is not None:
            holder.layout().addWidget(factory())
        return holder

    def current_page(self) -> str:
        return self.nav.currentItem().data(Qt.UserRole)

    def _on_nav(self, row: int) -> None:
        if row < 0:
            return
        key = self.nav.item(row).data(Qt.UserRole)
        self.stack.setCurrentWidget(self.page(key))

    def _tint(self, item: QListWidgetItem) -> None:
        pal, name = theme.current(), item.data(Qt.UserRole + 1)
        icon = QIcon()
        icon.addPixmap(theme.pixmap(name, pal.muted, 36), QIcon.Normal)
        icon.addPixmap(theme.pixmap(name, pal.accent, 36), QIcon.Selected)
        item.setIcon(icon)

    def _restart(self, title: str, message: str) -> None:
        """A new profile or a swarm opened to others: the services and the node start again."""
        self.show_notice(title, message, "ok")
        if self.flow is not None:
            self.flow.restart()

    def _build_swarm(self) -> QWidget:
        from desktop.gui.pages.swarm import SwarmPage  # built when first shown: it starts reading the chain

        return SwarmPage(None if self.attached else self.ctx.chain_status_command,
                         lambda: self.node.status if self.node is not None else None)

    def _build_settings(self) -> QWidget:
        try:
            from desktop.gui.settings import SettingsWidget  # the pages: built when first shown
        except ImportError:  # that part of the app is not installed in this build
            label = QLabel("Settings are loading…")
            label.setAlignment(Qt.AlignCenter)
            label.setObjectName("muted")
            return label
        base = self.sign_in.login_base()
        widget = SettingsWidget(self.ctx, on_logout=self.sign_in.logout,
                                autostart_command=self_command("gui", *self.ctx.data_dir_arg),
                                open_folder=open_folder,
                                login_status_url=base + "/login/status" if base else None)
        widget.setContentsMargins(16, 12, 16, 12)
        widget.saved.connect(lambda: self.show_notice("Settings saved", "Node settings apply the next time it "
                                                      "starts.", "ok"))
        return widget

    def _on_services_state(self, state) -> None:
        if state is ProcState.CRASHED:
            self.show_notice("Local services stopped", "The local chain or login server exited; see Logs.",
                             "error")

    # ---- node state -----------------------------------------------------------------------------
    def _on_node_state(self, state) -> None:
        self.dashboard.set_proc_state(state)
        self.status_state.setText(look(state).status)

    def _on_status(self, status) -> None:
        self.dashboard.apply_status(status)
        if status.round is not None:
            self.status_round.setText(f"Round {status.round}")
        self.status_peers.setText(f"{len(status.peers_seen)} peer{'s' * (len(status.peers_seen) != 1)} · "
                                  f"total reward {status.total_reward:.2f}")
        if self.node is not None and self.node.state is ProcState.RUNNING and status.state:
            self.status_state.setText(f"Running · {status.state}")

    def _load_identity(self) -> None:
        path = self.ctx.paths.identity
        if not path.is_file():
            return
        try:
            from desktop.identity import load_identity  # cryptography: after the first paint

            ident = load_identity(path)
        except Exception:  # a damaged key is the settings page's business, not the dashboard's
            return
        self.dashboard.show_identity(ident.name, ident.peer_id)

    # ---- notices ----------------------------------------------------------------------------------
    def show_notice(self, title: str, text: str, kind: str = "info", timeout_ms: int = NOTICE_MS,
                    action: tuple[str, Callable[[], None]] | None = None) -> Notice:
        """An in-app notification (the tray's fallback, and for things said inside the window),
        with at most one button (``action``: its label and what it does)."""
        self.notices.append((title, text, kind))
        while self.notice_area.count() >= 3:  # keep the page visible: at most three at once
            old = self.notice_area.takeAt(0).widget()
            if old is not None:
                old.dismiss()
        notice = Notice(title, text, kind, action=action)
        self.notice_area.addWidget(notice)
        if timeout_ms > 0 and kind != "error":  # errors stay until dismissed
            QTimer.singleShot(timeout_ms, notice, notice.dismiss)
        return notice

    def show_news(self, text: str, timeout_ms: int = NOTICE_MS) -> None:
        """News of the round (a reward recorded, a round joined): a line in the status bar, not a
        banner that pushes the page down every round."""
        self.status_news.setText(text)
        self._news_timer.start(timeout_ms)

    def visible_notices(self) -> list[Notice]:
        found = []
        for i in range(self.notice_area.count()):
            widget = self.notice_area.itemAt(i).widget()
            if isinstance(widget, Notice) and not widget.isHidden():
                found.append(widget)
        return found

    # ---- commands ---------------------------------------------------------------------------------
    @property
    def quitting(self) -> bool:
        """Quit was asked for (the children are being stopped): a second ask only leaves."""
        return self._quitting

    def bring_to_front(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def set_appearance(self, choice: str) -> None:
        self.settings_store.setValue("appearance", choice)
        if self.themes is not None:
            self.themes.set_choice(choice)

    def restyle(self) -> None:
        for row in range(self.nav.count()):
            self._tint(self.nav.item(row))
        self.actions.sync()
        self.dashboard.restyle()
        self.logs.restyle()

    def ask_for_node(self) -> None:
        """File > Connect to a node…: another window for a node elsewhere, through its dashboard."""
        url, ok = QInputDialog.getText(self, "Connect to a node", "The node's dashboard address, through your SSH "
                                       "tunnel (http://127.0.0.1:8787/?token=…):")
        if ok and url.strip():
            self.attach(url)

    def attach(self, url: str) -> "MainWindow | None":
        try:
            remote = RemoteNode(url, parent=self)
        except AttachError as exc:
            self.show_notice("Cannot connect", str(exc), "error")
            return None
        window = MainWindow(self.ctx, remote, None, self.themes, attached=True)
        window.setWindowTitle(f"RL Swarm — the node at {remote.base}")
        remote.said.connect(lambda title, text: window.show_notice(title, text, "info"))
        self.attached_windows.append(window)
        remote.connect_now()
        window.show()
        return window

    def request_quit(self) -> None:
        """Quit the app; a running node is asked to stop first (bounded by its stop timeout). An
        attached node's window only closes."""
        if self.attached:
            self.close()
            return
        self._quitting = True
        self.settings_store.setValue("window/geometry", self.saveGeometry())
        self.stop_children()
        self.quit_app()

    def stop_children(self) -> None:
        """The one shutdown routine (Quit, SIGTERM, the app's own exit, the screenshot run): the node,
        then the services, each stopped and waited for (bounded); the tray icon goes."""
        for sup in (self.node, self.services):
            if sup is not None and sup.state is not ProcState.STOPPED:
                sup.shutdown(timeout=10)
        if self.tray is not None:
            self.tray.hide()

    def _close_to_tray(self) -> bool:
        try:
            from desktop.gui.settings.general import close_to_tray  # the pages: built when first shown
        except ImportError:
            return True
        return close_to_tray(self.ctx)

    def closeEvent(self, event) -> None:
        if self.attached:  # the node goes on where it runs: only stop listening to it
            self.node.shutdown()
            super().closeEvent(event)
            return
        if self.tray_available and not self._quitting and self._close_to_tray():
            # The node keeps training in the background; the tray icon brings the window back.
            event.ignore()
            self.hide()
            if not self._told_about_tray:
                self._told_about_tray = True
                if self.tray is not None:
                    self.tray.notify("Still running", "RL Swarm keeps running in the tray. Quit from its menu.")
            return
        self.settings_store.setValue("window/geometry", self.saveGeometry())
        if not self._quitting:
            event.ignore()
            self.request_quit()
            return
        super().closeEvent(event)
