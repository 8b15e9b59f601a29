"""A node started by the app stops by itself when the app dies without stopping it."""

import os
import subprocess
import sys

import pytest

from desktop import events


@pytest.mark.slow
def test_node_stops_when_the_app_that_started_it_dies(tmp_path):
    app = subprocess.Popen(["sleep", "600"])  # stands in for the app process
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 16\n")
    env = dict(os.environ, RL_SWARM_PARENT_PID=str(app.pid), PYTHONUNBUFFERED="1")
    node = subprocess.Popen([sys.executable, "-m", "desktop.cli", "node", "--pool", "tiny", "--json-events",
                             "--config", str(cfg), "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in node.stdout:
            if events.decode(line)["type"] == "round_finished":
                break
        app.kill()  # the app is killed outright: no stop request reaches the node
        app.wait()
        rest = [events.decode(line) for line in node.stdout]
        assert node.wait(60) == 0
        assert rest[-1]["type"] == "node_stopped"
        assert rest[-1]["reason"] == "app-exited"
    finally:
        for proc in (app, node):
            if proc.poll() is None:
                proc.kill()


def test_without_the_variable_nothing_is_watched(monkeypatch):
    from desktop.utils.parent_watch import ENV, watch_parent

    monkeypatch.delenv(ENV, raising=False)
    assert watch_parent(lambda: None) is None
    monkeypatch.setenv(ENV, "not-a-pid")
    assert watch_parent(lambda: None) is None
