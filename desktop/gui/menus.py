"""The main window's menu bar: File (folders, join or host a swarm, quit), Node (start, stop,
pause, the local services), View (pages, appearance) and Help."""

from __future__ import annotations

from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

from desktop import __version__


def build_menus(win) -> None:
    menu = win.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addAction("Open &data folder", lambda: win._open_dir(win.ctx.paths.data))
    file_menu.addAction("Open &log folder", lambda: win._open_dir(win.ctx.paths.logs))
    file_menu.addSeparator()
    file_menu.addAction("&Join a swarm…", lambda: win.join.ask(win))
    file_menu.addAction("&Host a swarm…", lambda: win.host.ask(win))
    file_menu.addSeparator()
    file_menu.addAction(win.actions.quit)
    node_menu = menu.addMenu("&Node")
    for action in (win.actions.start, win.actions.finish, win.actions.stop):
        node_menu.addAction(action)
    node_menu.addSeparator()
    for action in win.pause_actions.all():
        node_menu.addAction(action)
    if win.services is not None:
        # the local chain, login server and round keeper (the local profile's back end)
        node_menu.addSeparator()
        win.services_start = node_menu.addAction("Start &local services", win.services.start)
        win.services_stop = node_menu.addAction("Stop l&ocal services", win.services.stop)
        win.services.state_changed.connect(win._on_services_state)
        win._on_services_state(win.services.state)
    view = menu.addMenu("&View")
    for i, (key, label) in enumerate([("dashboard", "&Dashboard"), ("logs", "&Logs"),
                                      ("settings", "&Settings"), ("swarm", "S&warm")]):
        action = view.addAction(label, lambda k=key: win.show_page(k))
        action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
    view.addSeparator()
    scheme = view.addMenu("&Appearance")
    group = QActionGroup(win)
    chosen = win.settings_store.value("appearance", "system")
    for value, label in (("system", "Follow &system"), ("light", "&Light"), ("dark", "&Dark")):
        action = scheme.addAction(label)
        action.setCheckable(True)
        action.setChecked(value == chosen)
        action.triggered.connect(lambda _c=False, v=value: win.set_appearance(v))
        group.addAction(action)
    help_menu = menu.addMenu("&Help")
    help_menu.addAction("&About RL Swarm", lambda: about(win))



def about(win) -> None:
    QMessageBox.about(win, "About RL Swarm",
                      f"<b>RL Swarm Desktop</b> {__version__}<br>Train a code model with GRPO together "
                      f"with other peers.<br><br>Data: {win.ctx.paths.data}")
