"""Where children run (desktop.utils.runtime): native commands, WSL commands and paths, and a real run of
the WSL code path through a wsl.exe stand-in (the node inside it hears no signals, only stdin)."""

import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from desktop.gui.app import protect_singletons
from desktop.gui.processes.children import NodeSupervisor
from desktop.gui.context import AppContext
from desktop.gui.processes.supervisor import ProcState
from desktop.utils.runtime import ENV_WSL, Native, Wsl, current, windows_to_wsl

protect_singletons()
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("windows, linux", [
    (r"C:\Users\Ada Lovelace\AppData\Local\rl-swarm-desktop", "/mnt/c/Users/Ada Lovelace/AppData/Local/rl-swarm-desktop"),
    ("d:/data/swarm.pem", "/mnt/d/data/swarm.pem"),
    ("E:\\", "/mnt/e"),
    (r"\\wsl$\RLSwarm\opt\rl-swarm-desktop", "/opt/rl-swarm-desktop"),
    (r"\\wsl.localhost\RLSwarm\home\ada", "/home/ada"),
    ("/already/posix", "/already/posix"),
    (r"config\node.yaml", "config/node.yaml"),
])
def test_windows_paths_as_the_distro_sees_them(windows, linux):
    assert windows_to_wsl(windows) == linux


def test_a_network_share_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="network share"):
        windows_to_wsl(r"\\server\share\data")


def test_wsl_commands_translate_path_arguments_only():
    wsl = Wsl()
    cmd = wsl.command("node", "--data-dir", PureWindowsPath(r"C:\Users\ada\rl"), "--org-id", r"C:\not-a-path")
    assert cmd == ["wsl.exe", "-d", "RLSwarm", "--exec", "/opt/rl-swarm-desktop/rl-swarm-desktop", "node",
                   "--data-dir", "/mnt/c/Users/ada/rl", "--org-id", r"C:\not-a-path"]
    assert not wsl.signals_reach_children


def test_native_commands_are_the_cli_itself():
    assert Native().command("probe", "--json", PurePosixPath("/tmp/d")) == [
        sys.executable, "-m", "desktop.cli", "probe", "--json", "/tmp/d"]


def test_the_app_builds_every_child_through_its_runtime(tmp_path, monkeypatch):
    native = AppContext.create(tmp_path)
    assert native.node_command("--rounds", "1")[:4] == [sys.executable, "-m", "desktop.cli", "node"]
    assert "--control-stdin" not in native.node_command()
    monkeypatch.setenv(ENV_WSL, "wsl.exe")
    assert isinstance(current(), Wsl)
    ctx = AppContext.create(None)  # the platform dirs: inside WSL they must still be named
    node, services = ctx.node_command("--pool", "tiny"), ctx.services_command()
    assert node[:6] == ["wsl.exe", "-d", "RLSwarm", "--exec", "/opt/rl-swarm-desktop/rl-swarm-desktop", "node"]
    assert "--control-stdin" in node  # stops go in on stdin
    assert node[node.index("--data-dir") + 1] == str(ctx.paths.data)
    # the node in WSL reads <data>/config and writes <data>/logs: the app's settings and log view agree
    assert (ctx.paths.config, ctx.paths.logs) == (ctx.paths.data / "config", ctx.paths.data / "logs")
    assert AppContext.create(tmp_path / "d").paths.config == (tmp_path / "d" / "config").resolve()
    assert services[5:9] == ["services", "--json", "--log-events", "--control-stdin"]  # as for the node
    assert services[services.index("--data-dir") + 1] == str(ctx.paths.data)


@pytest.fixture
def wsl_standin(tmp_path, monkeypatch):
    wrapper = tmp_path / "wsl.exe"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'wsl_standin.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv(ENV_WSL, str(wrapper))
    return wrapper


def _supervised(ctx, *extra, **kw):
    sup = NodeSupervisor(lambda: ctx.node_command(*extra), stop_by_stdin=not ctx.runtime.signals_reach_children,
                         **kw)
    sup.events = []
    sup.event.connect(sup.events.append)
    return sup


def _start_until(qtbot, sup, etype: str, timeout_ms: int) -> None:
    sup.events.clear()
    sup.start()
    qtbot.waitUntil(lambda: any(e["type"] == etype for e in sup.events), timeout=timeout_ms)


def _stopped_by_stdin(qtbot, sup, timeout_ms: int):
    with qtbot.waitSignal(sup.finished, timeout=timeout_ms) as done:
        sup.stop()
    assert done.args[0].ok
    assert done.args[0].exit_status == "normal"  # asked on stdin, not killed
    stopped = [e for e in sup.events if e["type"] == "node_stopped"]
    assert stopped[-1]["reason"] == "stop-command"
    assert stopped[-1]["exit_code"] == 0
    assert sup.state is ProcState.STOPPED


@pytest.mark.slow
def test_through_wsl_a_node_is_stopped_and_finishes_rounds_by_stdin(qtbot, tmp_path, wsl_standin, monkeypatch):
    monkeypatch.setenv("RL_SWARM_WSL_EXE", f"{sys.executable} {ROOT / 'tests' / 'standin_node.py'}")
    ctx = AppContext.create(tmp_path / "data")
    sup = _supervised(ctx, "--round-seconds", "0.3")
    _start_until(qtbot, sup, "round_finished", 30_000)
    with qtbot.waitSignal(sup.finished, timeout=30_000) as done:
        sup.finish_round_then_stop()
    assert done.args[0].ok
    assert sup.events[-1]["reason"] == "finish-round"
    _start_until(qtbot, sup, "round_started", 30_000)
    _stopped_by_stdin(qtbot, sup, 30_000)


@pytest.mark.slow
def test_the_real_node_through_the_wsl_code_path(qtbot, tmp_path, wsl_standin):
    ctx = AppContext.create(tmp_path / "data")
    config = tmp_path / "fast.yaml"
    config.write_text("training:\n  max_new_tokens: 24\nchain:\n  enabled: false\n")
    sup = _supervised(ctx, "--pool", "tiny", "--config", str(config))
    _start_until(qtbot, sup, "round_finished", 240_000)
    _stopped_by_stdin(qtbot, sup, 120_000)
    assert (tmp_path / "data" / "identity" / "swarm.pem").is_file()  # the app's data dir, named across


@pytest.mark.slow
def test_through_wsl_the_services_stop_by_stdin(qtbot, tmp_path, wsl_standin):
    from desktop.gui.processes.children import ServicesSupervisor
    from tests.procs import free_port

    (tmp_path / "data" / "config").mkdir(parents=True)
    (tmp_path / "data" / "config" / "config.yaml").write_text(f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\n")
    ctx = AppContext.create(tmp_path / "data")
    sup = ServicesSupervisor(lambda: ctx.services_command(), stop_by_stdin=not ctx.runtime.signals_reach_children)
    assert sup.stop_by_stdin
    with qtbot.waitSignal(sup.ready, timeout=120_000):
        sup.start()
    assert (tmp_path / "data" / "chain" / "services.json").exists()
    with qtbot.waitSignal(sup.finished, timeout=60_000) as done:
        sup.stop()  # a "stop" line: the stand-in, as wsl.exe, passes no signal on
    assert done.args[0].ok, done.args[0]
    assert not (tmp_path / "data" / "chain" / "services.json").exists()  # they stopped themselves, cleanly
