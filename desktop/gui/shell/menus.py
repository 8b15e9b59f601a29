"""The main window's menu bar: File (folders, join or host a swarm, quit), Node (start, stop,
pause, the local services), View (pages, appearance) and Help."""

from __future__ import annotations

from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

from desktop import __version__


def build_menus(win) -> None:
    """The menu bar of ``win`` (a MainWindow): its ``actions`` (shell.actions) laid out, and the
    view's pages and appearance, which are the window's own."""
    actions = win.actions
    menu = win.menuBar()
    file_menu = menu.addMenu("&File")
    for action in (actions.open_data, actions.open_logs, None, actions.join, actions.host, actions.connect_node, None,
                   actions.quit):
        file_menu.addSeparator() if action is None else file_menu.addAction(action)
    node_menu = menu.addMenu("&Node")
    for action in actions.node_commands():
        node_menu.addAction(action)
    node_menu.addSeparator()
    for action in actions.pause.all():
        node_menu.addAction(action)
    if win.services is not None:
        # the local chain, login server and round keeper (the local profile's back end)
        node_menu.addSeparator()
        node_menu.addAction(actions.services_start)
        node_menu.addAction(actions.services_stop)
    view = menu.addMenu("&View")
    pages = [(k, label) for k, label in [("dashboard", "&Dashboard"), ("logs", "&Logs"), ("settings", "&Settings"),
                                         ("swarm", "S&warm")] if k in win.page_names()]
    for i, (key, label) in enumerate(pages):
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
