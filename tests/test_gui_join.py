"""File > Join a swarm…: `rl-swarm join` as a real background child; a bad or unreachable invite
is one message, and the data dir is left as it was."""

import sys
import time

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from desktop.gui.dialogs.join_swarm import JoinSwarm  # noqa: E402
from desktop.gui.shell.main_window import MainWindow  # noqa: E402
from desktop.gui.context import AppContext  # noqa: E402
from desktop.services.invites import Invite  # noqa: E402
from tests.procs import CLI  # noqa: E402


def _command(data):
    return lambda code: [sys.executable, *CLI[1:], "join", code, "--data-dir", str(data)]


def test_a_bad_code_is_one_message_and_changes_nothing(qtbot, tmp_path):
    win = MainWindow(AppContext.create(tmp_path / "d"))
    qtbot.addWidget(win)
    win.join = JoinSwarm(win, _command(tmp_path / "d"))
    win.join.failed.connect(lambda why: win.show_notice("Could not join the swarm", why, "error"))
    before = sorted(p.name for p in (tmp_path / "d").rglob("*"))
    started = time.monotonic()
    with qtbot.waitSignal(win.join.failed, timeout=60000) as got:
        assert win.join.run("not a code")
        assert not win.join.run("a second one")  # one join at a time
        assert time.monotonic() - started < 0.5  # the window is not held up
    assert "not an RL Swarm invite" in got.args[0]
    assert [n.title for n in win.visible_notices()] == ["Could not join the swarm"]
    assert sorted(p.name for p in (tmp_path / "d").rglob("*")) == before


def test_an_unreachable_host_says_so(qtbot, tmp_path):
    join = JoinSwarm(None, _command(tmp_path / "d"))
    dead = Invite(rpc="http://127.0.0.1:9", chain_id=31337, contract="0x" + "ab" * 20, join="http://127.0.0.1:9/join",
                  id="abcdefgh", secret="s" * 32, expires=int(time.time()) + 600)
    with qtbot.waitSignal(join.failed, timeout=60000) as got:
        join.run(dead.link())
    assert "does not answer" in got.args[0]
    assert not (tmp_path / "d" / "swarm.json").exists()
