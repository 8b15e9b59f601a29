"""Tray: icon by state, node commands from its menu, notifications, and the no-tray fallback."""

import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QSystemTrayIcon

from desktop.gui.app import protect_singletons
from desktop.gui.context import AppContext
from desktop.gui.shell.main_window import MainWindow
from desktop.gui.processes.children import NodeSupervisor
from desktop.gui.processes.supervisor import ProcState, RestartPolicy
from desktop.gui.shell.tray import tray_available as has_tray

pytestmark = pytest.mark.gui
protect_singletons()  # PySide6 6.12 on Python 3.11 drops references to None (see desktop.gui.app)

STANDIN = Path(__file__).resolve().parent / "standin_node.py"  # a real child that speaks the protocol


def _node(mode: str = "run", **kw) -> NodeSupervisor:
    """Joins at round 7, whose end waits for "finish the round"; or crashes in round 7 ("crash")."""
    cue = ["--crash-in-round", "7", "--exit-code", "3", "--crash-message", "RuntimeError: out of memory"]
    args = ["--join-round", "7", "--round-seconds", "inf", "--chain", *(cue if mode == "crash" else [])]
    return NodeSupervisor(lambda: [sys.executable, str(STANDIN), *args], **kw)


@pytest.fixture
def make_window(qtbot, tmp_path):
    made = []

    def make(node, tray_available=None):
        available = has_tray() if tray_available is None else tray_available
        win = MainWindow(AppContext.create(tmp_path), node, tray_available=available)
        win.quit_app = lambda: None
        qtbot.addWidget(win)
        made.append(node)
        return win, win.tray  # the window makes its own tray, from its own actions

    yield make
    for node in made:
        node.shutdown(timeout=5)


def test_without_a_tray_notices_appear_in_the_window(make_window, qtbot):
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen
    node = _node()
    win, tray = make_window(node)
    assert tray.tray is None
    assert not tray.available
    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    qtbot.waitUntil(lambda: "Joined a round" in win.status_news.text(), timeout=5000)
    titles = [n.title for n in win.visible_notices()]
    assert titles == ["Node started"]  # round news goes to the status bar, not a banner
    assert "standin:0" in win.visible_notices()[0].text  # the model it named
    assert tray.icon_name == "tray-running"
    win.visible_notices()[0].dismiss()
    qtbot.waitUntil(lambda: len(win.visible_notices()) == 0)


def test_tray_menu_drives_the_node(make_window, qtbot):
    node = _node()
    win, tray = make_window(node, tray_available=True)  # a tray object even where none is shown
    assert tray.menu is not None
    menu = [a for a in tray.menu.actions() if not a.isSeparator()]
    assert menu == [win.actions.open, win.actions.start, win.actions.finish, win.actions.stop,
                    *win.actions.pause.all(), win.actions.quit]
    assert tray.icon_name == "tray-paused"
    assert not tray.tray.icon().isNull()

    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    assert tray.icon_name == "tray-running"
    assert not win.actions.start.isEnabled()
    assert win.actions.stop.isEnabled()
    assert win.actions.finish.isEnabled()
    with qtbot.waitSignal(node.finished, timeout=15000) as done:
        win.actions.finish.trigger()  # finish the round, then stop
        assert node.state is ProcState.STOPPING
        assert tray.icon_name == "tray-starting"
    assert done.args[0].ok
    assert done.args[0].last_round == 7
    assert node.state is ProcState.STOPPED
    assert tray.icon_name == "tray-paused"
    assert ("Node stopped", "The node stopped after round 7.", "info") in tray.sent
    assert ("Reward submitted", "Round 7: 2 submission(s) recorded on chain.", "ok") in tray.sent

    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    with qtbot.waitSignal(node.finished, timeout=15000):
        win.actions.stop.trigger()
    assert node.state is ProcState.STOPPED
    assert win.actions.start.isEnabled()


def test_crash_restart_and_give_up_are_announced(make_window, qtbot):
    node = _node("crash", restart=RestartPolicy(max_restarts=1, backoff_start=0.2))
    win, tray = make_window(node)
    with qtbot.waitSignal(node.gave_up, timeout=20000):
        win.actions.start.trigger()
    kinds = [(title, kind) for title, _text, kind in tray.sent]
    assert ("Node crashed", "warn") in kinds
    assert kinds[-1] == ("Node stopped", "error")
    assert "out of memory" in tray.sent[-1][1]
    assert tray.icon_name == "tray-error"
    assert node.state is ProcState.CRASHED
    assert win.visible_notices()[-1].kind == "error"
    assert win.actions.start.isEnabled()  # the user can try again


def test_open_and_quit_actions(make_window, qtbot):
    node = _node()
    win, tray = make_window(node)
    quits = []
    win.quit_app = lambda: quits.append(1)
    win.hide()
    win.actions.open.trigger()
    assert win.isVisible()
    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    win.actions.quit.trigger()  # stops the node (blocking, bounded) before quitting
    assert quits == [1]
    assert node.state is ProcState.STOPPED


def test_closing_the_window_keeps_running_in_the_tray_unless_told_otherwise(qtbot, tmp_path):
    from desktop.gui.settings.general import KEY_CLOSE_TO_TRAY, gui_settings
    ctx = AppContext.create(tmp_path)
    win = MainWindow(ctx, tray_available=True)
    quits = []
    win.quit_app = lambda: quits.append(1)
    qtbot.addWidget(win)
    win.show()
    win.close()
    assert not win.isVisible()
    assert quits == []  # hidden to the tray, app still running
    assert win.tray.sent[-1][0] == "Still running"
    settings = gui_settings(ctx)
    settings.setValue(KEY_CLOSE_TO_TRAY, False)
    settings.sync()
    win.show()
    win.close()
    assert quits == [1]


def test_pausing_from_the_menu_reaches_the_node_and_shows(make_window, qtbot, tmp_path):
    """Pause for 1 hour / Resume (the window's own actions, in its tray menu too) write the pause
    file; the node (a stand-in following it, as the real node's governor does) pauses and resumes;
    the window's status bar says so."""
    node = NodeSupervisor(lambda: [sys.executable, str(STANDIN), "--round-seconds", "0.2",
                                   "--follow-pause", str(tmp_path)])
    win, tray = make_window(node, tray_available=True)
    pause = win.actions.pause
    assert [a for a in tray.menu.actions() if a in pause.all()] == pause.all()  # in the tray menu
    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    pause.hour.trigger()
    qtbot.waitUntil(lambda: any(t == "Paused" for t, _, _ in tray.sent), timeout=10000)
    assert win.node.status.paused == "user"
    assert "paused" in win.node.status.state
    pause.resume.trigger()
    qtbot.waitUntil(lambda: any(t == "Resumed" for t, _, _ in tray.sent), timeout=10000)
    assert win.node.status.paused is None


def test_resume_is_offered_exactly_while_the_node_is_paused_by_its_user(make_window, qtbot, tmp_path):
    """A pause made elsewhere (`rl-swarm pause`, another window) and its end show in the tray's and
    the menu's Resume as soon as the node reports them, not at the next look at the file."""
    from desktop.machine import pause_control

    node = NodeSupervisor(lambda: [sys.executable, str(STANDIN), "--round-seconds", "0.2",
                                   "--follow-pause", str(tmp_path)])
    win, tray = make_window(node, tray_available=True)
    resume = win.actions.pause.resume
    win.actions.start.trigger()
    qtbot.waitUntil(lambda: node.state is ProcState.RUNNING, timeout=15000)
    assert not resume.isEnabled()  # running, not paused: nothing to resume
    pause_control.pause(pause_control.control_path(tmp_path), "now")
    qtbot.waitUntil(lambda: win.node.status.paused == "user", timeout=10000)
    qtbot.waitUntil(resume.isEnabled, timeout=1000)  # with the node's event, not the 5 s poll
    pause_control.resume(pause_control.control_path(tmp_path))
    qtbot.waitUntil(lambda: win.node.status.paused is None, timeout=10000)
    qtbot.waitUntil(lambda: not resume.isEnabled(), timeout=1000)
