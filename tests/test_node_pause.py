"""A real tiny `rl-swarm node` paused and resumed without a restart: by the user's pause file
(`rl-swarm pause` / the app), after a round, across a restart, by the memory watchdog, by
the user's input under a real X server; and the memory guard refusing a model that cannot fit."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from desktop.machine import pause_control
from tests.procs import CLI, EventProcess, env, node_args

pytestmark = pytest.mark.slow


def _config(tmp_path, extra: str = "") -> str:
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 24\n" + extra)
    return cfg


def _node(tmp_path, *extra, config=None, **extra_env) -> EventProcess:
    data = tmp_path / "data"
    return EventProcess(node_args(data, *extra, config=config or _config(tmp_path)), tmp_path / "node.err", extra_env)


def _control(tmp_path):
    return pause_control.control_path(tmp_path / "data")


def _finished(node) -> list[int]:
    return [e["round"] for e in node.events if e["type"] == "round_finished"]


def test_pause_now_then_resume_loses_and_repeats_no_round(tmp_path):
    node = _node(tmp_path, "--rounds", "4")
    try:
        assert node.wait_for(lambda e: e["type"] == "round_finished", 240)
        assert node.wait_for(lambda e: e["type"] == "round_started", 120)  # pause inside a round
        pause_control.pause(_control(tmp_path), "now")
        paused = node.wait_for(lambda e: e["type"] == "paused", 30)
        assert paused and paused["reason"] == "user" and paused["when"] == "now"
        held = _finished(node)
        time.sleep(4)
        assert _finished(node) == held  # nothing moved while paused
        assert node.proc.poll() is None
        subprocess.run(CLI + ["resume", "--data-dir", str(tmp_path / "data")], check=True, env=env(),
                       capture_output=True)
        resumed = node.wait_for(lambda e: e["type"] == "resumed", 30)
        assert resumed and resumed["seconds"] >= 4
        assert node.proc.wait(300) == 0
    finally:
        node.stop()
    assert _finished(node) == [0, 1, 2, 3]  # every round once: none lost, none played twice


def test_pause_after_round_finishes_the_round_first(tmp_path):
    node = _node(tmp_path, "--rounds", "3")
    try:
        started = node.wait_for(lambda e: e["type"] == "round_started", 240)
        pause_control.pause(_control(tmp_path), "after-round")
        paused = node.wait_for(lambda e: e["type"] == "paused", 240)
        assert paused["when"] == "after-round"
        assert started["round"] in _finished(node)  # the round in progress was played to its end
        assert paused["round"] == started["round"] + 1  # waiting before the next one
        pause_control.resume(_control(tmp_path))
        assert node.proc.wait(300) == 0
    finally:
        node.stop()
    assert _finished(node) == [0, 1, 2]


def test_a_paused_node_stays_paused_across_restarts_and_stops_on_sigterm(tmp_path):
    pause_control.pause(_control(tmp_path), "now")
    for _ in range(2):  # started twice on the same data dir
        node = _node(tmp_path, "--rounds", "2")
        try:
            paused = node.wait_for(lambda e: e["type"] == "paused", 240)
            assert paused and paused["reason"] == "user"
            time.sleep(2)
            assert node.count("round_started") == 0  # a node started paused begins no round
            node.proc.send_signal(signal.SIGTERM)
            assert node.proc.wait(60) == 0
        finally:
            node.stop()
        stopped = [e for e in node.events if e["type"] == "node_stopped"]
        assert stopped and stopped[0]["reason"] == "sigterm"
    pause_control.resume(_control(tmp_path))
    node = _node(tmp_path, "--rounds", "1")
    try:
        assert node.proc.wait(300) == 0
    finally:
        node.stop()
    assert _finished(node) == [0]


def test_memory_watchdog_pauses_instead_of_growing(tmp_path):
    """A node over its memory limit pauses (reason memory) with the numbers; it is not killed."""
    node = _node(tmp_path, "--rounds", "2", config=_config(tmp_path, "resources:\n  memory_limit_mb: 256\n"))
    try:
        paused = node.wait_for(lambda e: e["type"] == "paused", 240)
        assert paused and paused["reason"] == "memory"
        assert "over its limit of 256 MB" in paused["detail"]
        time.sleep(3)
        assert node.proc.poll() is None and node.count("round_finished") == 0
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(60) == 0
    finally:
        node.stop()


def test_only_when_idle_pauses_on_input_and_resumes_after_the_idle_time(tmp_path):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed")
    display = f":{700 + os.getpid() % 200}"
    server = subprocess.Popen(["Xvfb", display, "-noreset", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = _config(tmp_path, "resources:\n  only_when_idle: true\n  idle_minutes: 0.1\n")  # 6 s
    node = None
    try:
        time.sleep(1)
        node = _node(tmp_path, config=cfg, DISPLAY=display)
        # the screen was just created (0 s idle): the node waits, then starts once 6 s pass
        first = node.wait_for(lambda e: e["type"] in ("paused", "round_started"), 240)
        if first and first["type"] == "paused":
            assert first["reason"] == "idle"
        assert node.wait_for(lambda e: e["type"] == "round_finished", 240)
        subprocess.run(["xdotool", "mousemove", "30", "40"], env={**os.environ, "DISPLAY": display}, check=True)
        touched = time.monotonic()
        paused = node.wait_for(lambda e: e["type"] == "paused" and e["reason"] == "idle", 30)
        assert paused, "no pause after input"
        reaction = time.monotonic() - touched
        resumed = node.wait_for(lambda e: e["type"] == "resumed", 60)
        assert resumed and resumed["reason"] == "idle"
        assert reaction < 10  # within seconds of the input (2 s checks, a token step)
        assert resumed["seconds"] >= 3  # not before the idle time has passed again
    finally:
        if node is not None:
            node.stop()
        server.terminate()
        server.wait(10)


def test_memory_guard_refuses_a_model_that_cannot_fit(tmp_path):
    """A model folder whose config says ~300 B parameters: refused before any weights are read,
    with the numbers and what to change, exit 2, no traceback, nothing written for it."""
    folder = tmp_path / "huge-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 16384,
        "num_hidden_layers": 96, "intermediate_size": 65536, "vocab_size": 151936,
        "num_attention_heads": 128, "num_key_value_heads": 8, "tie_word_embeddings": False}))
    data = tmp_path / "data"
    done = subprocess.run(CLI + ["node", "--model", str(folder), "--rounds", "1", "--data-dir", str(data)],
                          capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Not enough memory" in done.stderr and "Try:" in done.stderr
    assert "bfloat16" in done.stderr and "Traceback" not in done.stderr
    assert not (data / "checkpoints").exists() or not any((data / "checkpoints").iterdir())


def test_pause_mid_round_on_a_chain_submits_every_round_once(tmp_path):
    """On the local chain: paused inside a round, resumed; every round the node finished put its
    reward in exactly one submission, none dropped, none waiting, none sent twice."""
    from tests.procs import Services

    services = Services(tmp_path / "services")
    node = None
    try:
        services.start()
        org = services.account("pause@local.rl-swarm.net")
        node = _node(tmp_path, "--rounds", "4", "--services", str(services.services_file), "--org-id", org)
        assert node.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0, 240)
        assert node.wait_for(lambda e: e["type"] == "round_started", 120)
        pause_control.pause(_control(tmp_path), "now")
        assert node.wait_for(lambda e: e["type"] == "paused", 30)
        held = _finished(node)
        time.sleep(4)
        assert _finished(node) == held
        pause_control.resume(_control(tmp_path))
        assert node.wait_for(lambda e: e["type"] == "resumed", 30)
        assert node.proc.wait(300) == 0
    finally:
        if node is not None:
            node.stop()
        services.stop()
    finished = _finished(node)
    assert len(finished) == 4 and len(set(finished)) == 4  # none lost, none played twice
    queued = [e for e in node.events if e["type"] == "chain_queued"]
    assert sum(e["rounds"] for e in queued) == 4  # each finished round's reward in one submission
    state = json.loads((tmp_path / "data" / "chain" / "submissions.json").read_text())
    assert state["items"] == []
    assert [k for k, v in state["done"].items() if v["status"] == "dropped"] == []
    rewards = [k for k, v in state["done"].items() if k.startswith("reward:")]
    assert len(rewards) == len(set(rewards)) == len(queued)
