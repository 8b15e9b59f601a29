"""The desktop app: every page builds and shows, the dashboard follows a real node's events, one app
per data dir, and `rl-swarm gui --screenshot` runs the whole thing end to end."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop import events
from desktop.cli import build_parser
from desktop.gui.app import SingleInstance, build_window, protect_singletons, server_name
from desktop.gui.context import AppContext
from desktop.gui.shell.main_window import MainWindow
from desktop.gui.processes.children import NodeSupervisor, ServicesSupervisor

pytestmark = pytest.mark.gui
protect_singletons()  # PySide6 6.12 on Python 3.11 drops references to None (see desktop.gui.app)
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def node_output(tmp_path_factory) -> Path:
    """stdout of a real tiny node playing three rounds, captured once for this module."""
    data = tmp_path_factory.mktemp("node")
    ctx = AppContext.create(data)
    proc = subprocess.run(ctx.node_command("--pool", "tiny", "--rounds", "3"), capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = data / "events.jsonl"
    path.write_text(proc.stdout)
    return path


def _replayer(path: Path) -> list[str]:
    # a real child process whose stdout is that node's, so the supervisor does its real parsing
    return [sys.executable, "-c", f"import sys; sys.stdout.write(open({str(path)!r}).read())"]


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication
    win = build_window(AppContext.create(tmp_path), QApplication.instance())
    win.quit_app = lambda: None  # closing it at teardown must not end the test session's app
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_main_window_shows_every_page(window, qtbot):
    assert window.page_names() == ["dashboard", "swarm", "logs", "settings"]
    for key in window.page_names():
        page = window.show_page(key)
        assert window.stack.currentWidget() is page
        assert page.isVisible()
        assert window.current_page() == key
    from desktop.gui.settings import SettingsWidget
    assert window.pages["settings"].findChild(SettingsWidget) is not None  # built when first shown
    assert not window.tray.available  # offscreen: no tray, the window is the app
    assert window.actions.start.isEnabled()
    assert not window.actions.stop.isEnabled()
    window.set_appearance("dark")
    assert window.themes.choice == "dark"
    from desktop.gui import theme
    assert theme.current() is theme.DARK
    window.set_appearance("light")
    assert theme.current() is theme.LIGHT


@pytest.mark.slow  # node_output boots a real node (torch)
def test_dashboard_follows_a_real_node(qtbot, tmp_path, node_output):
    lines = [ln for ln in node_output.read_text().splitlines() if ln.strip()]
    import json
    evs = [json.loads(ln) for ln in lines]
    started = next(e for e in evs if e["type"] == "node_started")
    finished = [e for e in evs if e["type"] == "round_finished"]
    assert len(finished) == 3

    node = NodeSupervisor(lambda: _replayer(node_output))
    win = MainWindow(AppContext.create(tmp_path), node)
    win.quit_app = lambda: None
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(node.finished, timeout=20000) as done:
        node.start()
    assert done.args[0].ok
    dash = win.dashboard
    assert dash.name_label.text() == started["name"].title()
    assert dash.peer_id_label.text() == started["peer_id"]
    assert dash.card_model.value.text() == started["model"]
    assert dash.card_round.value.text() == str(finished[-1]["round"])
    assert dash.card_last.value.text() == f"{finished[-1]['reward_mean']:.3f}".rstrip("0").rstrip(".")  # 3 places
    total = sum(e["reward_mean"] for e in finished)
    assert dash.card_total.value.text() == f"{total:.2f}".rstrip("0").rstrip(".")
    assert dash.reward_chart.xs == [0, 1, 2]
    assert dash.reward_chart.series["reward"] == [e["reward_mean"] for e in finished]
    assert dash.time_chart.series["generate"] == [e["generate_s"] for e in finished]
    assert dash.table.rowCount() == 3
    assert dash.table.item(0, 0).text() == "2"  # newest first
    assert dash.pill.text() == "Stopped"
    assert "Stopped" in dash.activity.text()
    win.logs.flush()
    news = [e for e in evs if e["type"] != "log"]  # records are shown at their level, not as EVENT lines
    assert sum(" EVENT " in line for line in win.logs.visible_lines()) == len(news)
    assert sum(" INFO " in line for line in win.logs.visible_lines()) >= len(evs) - len(news) > 0
    assert "total reward" in win.status_peers.text()


@pytest.mark.slow
def test_sign_in_page_comes_with_the_services_and_goes_once_signed_in(qtbot, tmp_path):
    # a real child that announces itself like `rl-swarm services --json`; nothing listens on the
    # login URL, so the page shows its "could not load" panel, which is fine for the flow
    info = events.encode(events.make("services_ready", rpc_url="http://127.0.0.1:9", contract="0x0",
                                     login_url="http://127.0.0.1:9", api_token_file="t"))
    script = f"import time; print({info!r}, flush=True); time.sleep(60)"
    services = ServicesSupervisor(lambda: [sys.executable, "-c", script])
    ctx = AppContext.create(tmp_path)
    win = MainWindow(ctx, services=services)
    win.quit_app = lambda: None
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(services.ready, timeout=15000):
            services.start()
        assert "login" in win.page_names()
        assert win.notices[-1][0] == "Sign in"
        assert win.current_page() == "login"  # straight to it: nothing runs before sign-in
        from desktop.gui.login_view import LoginView
        assert win.pages["login"].findChild(LoginView) is not None
        login = ctx.paths.data / "login"
        login.mkdir(parents=True)
        (login / "userData.json").write_text('{"org": {"orgId": "org", "email": "a@b.c", "address": "0x1"}}')
        qtbot.waitUntil(lambda: "login" not in win.page_names(), timeout=10000)
        assert win.current_page() == "dashboard"
        assert win.notices[-1][0] == "Signed in"
    finally:
        services.shutdown(timeout=5)


def test_log_out_from_the_app_signs_out_on_the_real_login_server(qtbot, tmp_path):
    """Settings' Log out posts to /login/logout as the app's own page would: JSON, with the
    session's secret, which the server now requires."""
    from desktop.services.login_server import LoginServer
    srv = LoginServer(tmp_path / "services", "http://127.0.0.1:9", "0x" + "00" * 20, port=0,
                      use_keyring=False).run_in_thread()
    services = None
    try:
        srv.store.sign_in("ada@example.com")
        info = events.encode(events.make("services_ready", rpc_url="http://127.0.0.1:9", contract="0x0",
                                         login_url=srv.url, api_token_file=str(srv.api_token_file)))
        services = ServicesSupervisor(lambda: [sys.executable, "-c", f"import time; print({info!r}, flush=True); "
                                               "time.sleep(60)"])
        win = MainWindow(AppContext.create(tmp_path / "app"), services=services)
        win.quit_app = lambda: None
        qtbot.addWidget(win)
        with qtbot.waitSignal(services.ready, timeout=15000):
            services.start()
        win.sign_in.logout()
        qtbot.waitUntil(lambda: srv.store.current() is None, timeout=10000)
    finally:
        if services is not None:
            services.shutdown(timeout=5)
        srv.stop_thread()


def test_second_launch_raises_the_first(qtbot, tmp_path):
    first = SingleInstance(server_name(AppContext.create(tmp_path).paths.data))
    assert first.listen()
    try:
        with qtbot.waitSignal(first.message, timeout=15000) as got:
            began = time.monotonic()
            second = subprocess.Popen([sys.executable, "-m", "desktop.cli", "gui", "--data-dir", str(tmp_path)],
                                      env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert got.args == ["raise"]
        out, err = second.communicate(timeout=15)
        assert second.returncode == 0, err
        assert time.monotonic() - began < 10
        assert "already running" in out
    finally:
        first.close()


def test_a_stale_socket_does_not_block_the_next_app(tmp_path):
    name = server_name(tmp_path)
    crashed = SingleInstance(name)
    assert crashed.listen()
    crashed.server.close()  # gone without telling anyone
    fresh = SingleInstance(name)
    assert fresh.listen()
    fresh.close()


def test_cli_has_a_gui_command():
    args = build_parser().parse_args(["gui", "--data-dir", "d", "--screenshot", "s"])
    assert args.command == "gui"
    assert args.data_dir == Path("d")
    assert args.screenshot == Path("s")


@pytest.mark.slow
def test_screenshot_mode_end_to_end(tmp_path):
    out = tmp_path / "shots"
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "gui", "--screenshot", str(out),
                           "--data-dir", str(tmp_path / "data")], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    names = {p.name for p in out.glob("*.png")}
    for page in ("dashboard", "logs", "settings"):
        assert {f"{page}.png", f"{page}-dark.png"} <= names
    assert all(p.stat().st_size > 10_000 for p in out.glob("*.png"))
