"""The real `rl-swarm node` process: events, exit codes, signals, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop import events
from desktop.config import apply_pool_defaults, load_config

CLI = [sys.executable, "-m", "desktop.cli"]


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return env


def _small_config(tmp_path: Path, tokens: int = 48) -> Path:
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(f"training:\n  max_new_tokens: {tokens}\n")
    return cfg


def _start(args, **kw):
    return subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), **kw)


def _read_until(proc, predicate, timeout=240):
    """Read validated events until predicate(event) is true; return all events read."""
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(events.decode(line))
        if predicate(seen[-1]):
            return seen
        assert time.monotonic() < deadline, f"timed out; got {[e['type'] for e in seen]}"
    raise AssertionError(f"stream ended; got {[e['type'] for e in seen]}\n{proc.stderr.read()}")


@pytest.mark.slow
def test_three_rounds_emit_valid_events_and_exit_zero(tmp_path):
    proc = subprocess.run(CLI + ["node", "--pool", "tiny", "--rounds", "3", "--json-events",
                                 "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    evs = [events.decode(line) for line in lines]  # every line is a valid event
    records = [e for e in evs if e["type"] == "log"]  # log records travel as events, level and logger apart
    assert any(r["level"] == "INFO" and r["logger"].startswith("desktop.node") and r["message"].startswith("identity Qm")
               for r in records), records[:5]
    assert "INFO" not in proc.stderr  # nothing left to parse on stderr
    evs = [e for e in evs if e["type"] != "log"]
    types = [e["type"] for e in evs]
    assert types[0] == "node_started"
    assert types[-1] == "node_stopped"
    started = evs[0]
    assert started["peer_id"].startswith("Qm")
    assert started["model"] == "tiny:tiny"
    assert started["device"] == "cpu"
    assert started["round"] == 0
    assert len(started["name"].split()) == 3
    finished = [e for e in evs if e["type"] == "round_finished"]
    assert [e["round"] for e in finished] == [0, 1, 2]
    for e in finished:
        assert e["seconds"] >= e["generate_s"] + e["judge_s"] + e["train_s"] + e["comm_s"] - 0.05
    for etype in ("round_started", "rollouts", "rewards", "train_step", "checkpoint"):
        assert types.count(etype) == 3, etype
    skill = [e for e in evs if e["type"] == "skill"]  # held-out problems, before the first round (every 10)
    assert [e["round"] for e in skill] == [0] and skill[0]["problems"] == 16 and 0 <= skill[0]["pass_rate"] <= 1
    assert types.index("skill") < types.index("round_started")
    for step in (e for e in evs if e["type"] == "train_step" and not e["skipped"]):
        assert step["own_logp"] < 0 and step["external_logp"] is None and step["external_share"] == 0
    config = load_config(_small_config(tmp_path))
    apply_pool_defaults(config, "tiny")  # what the node ran with: G completions for each of I problems
    per_round = config.training.num_generations * config.swarm.local_groups
    for e in (e for e in evs if e["type"] == "rewards"):
        assert len(e["own"]) == per_round
        assert all(-1.4 <= r <= 1.2 for r in e["own"])
    assert evs[-1]["exit_code"] == 0
    assert evs[-1]["round"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["round-00000001.pt", "round-00000002.pt"]
    assert (tmp_path / "logs" / "node.log").read_text().count("identity Qm") == 1
    # what it left for `rl-swarm swarm-status`: this peer, its last round, stopped (no chain here)
    shown = subprocess.run(CLI + ["swarm-status", "--json", "--data-dir", str(tmp_path)], capture_output=True,
                           text=True, env=_env(), timeout=120)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["node"]["peer_id"], view["node"]["round"], view["node"]["state"]) == (started["peer_id"], 2, "stopped")
    assert view["chain"] is None and view["chain_error"]
    assert [row["peer_id"] for row in view["peers"]] == [started["peer_id"]] and view["peers"][0]["me"]


@pytest.mark.slow
def test_sigkill_mid_round_then_resume_with_same_peer_id(tmp_path):
    cfg = _small_config(tmp_path)
    args = ["node", "--pool", "tiny", "--json-events", "--data-dir", str(tmp_path), "--config", str(cfg)]
    proc = _start(args + ["--rounds", "10"])
    try:
        seen = _read_until(proc, lambda e: e["type"] == "round_started" and e["round"] == 1)
    finally:
        proc.kill()
        proc.wait(30)
    first_id = next(e for e in seen if e["type"] == "node_started")["peer_id"]
    assert [e["round"] for e in seen if e["type"] == "checkpoint"] == [0]

    again = subprocess.run(CLI + args + ["--rounds", "1"], capture_output=True, text=True, env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    evs = [e for e in map(events.decode, again.stdout.splitlines()) if e["type"] != "log"]
    assert evs[0]["type"] == "node_started"
    assert evs[0]["peer_id"] == first_id
    assert evs[0]["round"] == 1  # resumed after the last checkpoint, not from scratch
    assert [e["round"] for e in evs if e["type"] == "round_finished"] == [1]


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_keeps_the_checkpoint(tmp_path):
    cfg = _small_config(tmp_path)
    proc = _start(["node", "--pool", "tiny", "--json-events", "--data-dir", str(tmp_path), "--config", str(cfg)])
    try:
        _read_until(proc, lambda e: e["type"] == "checkpoint")
        proc.send_signal(signal.SIGTERM)
        rest = [events.decode(line) for line in proc.stdout]
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rest[-1]["type"] == "node_stopped"
    assert rest[-1]["reason"] == "sigterm"
    assert rest[-1]["exit_code"] == 0
    assert (tmp_path / "checkpoints" / "round-00000000.pt").exists()
    assert "Traceback" not in proc.stderr.read()


def test_identity_show_json_is_stable(tmp_path):
    out1 = subprocess.run(CLI + ["identity", "show", "--json", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, check=True, env=_env())
    out2 = subprocess.run(CLI + ["identity", "show", "--json", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, check=True, env=_env())
    a, b = json.loads(out1.stdout), json.loads(out2.stdout)
    assert a == b
    assert set(a) == {"peer_id", "name", "path"}
    assert a["peer_id"].startswith("Qm")
    assert Path(a["path"]) == tmp_path / "identity" / "swarm.pem"
    assert (Path(a["path"]).stat().st_mode & 0o777) == 0o400


def test_node_with_a_corrupt_identity_exits_2_and_leaves_it(tmp_path):
    bad = tmp_path / "swarm.pem"
    bad.write_bytes(b"\x08\x00\x12\x05hello")
    before = bad.read_bytes()
    proc = subprocess.run(CLI + ["node", "--pool", "tiny", "--rounds", "1", "--json-events",
                                 "--identity", str(bad), "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
    evs = [events.decode(line) for line in proc.stdout.splitlines()]
    assert [e["type"] for e in evs] == ["error", "node_stopped"]
    assert evs[-1]["exit_code"] == 2
    assert bad.read_bytes() == before


@pytest.mark.parametrize("json_events", [False, True])
def test_identity_error_is_printed_exactly_once(tmp_path, json_events):
    bad = tmp_path / "BADFILE"
    bad.write_bytes(bytes(range(256))[::-3] * 4)  # garbage, not a key
    before = bad.read_bytes()
    data = tmp_path / "d"
    args = ["node", "--data-dir", str(data), "--identity", str(bad)] + (["--json-events"] if json_events else [])
    proc = subprocess.run(CLI + args, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr
    # once: not again through the console log handler, nor as an "error:" progress line
    assert proc.stderr.count(str(bad)) == 1, proc.stderr
    assert proc.stderr.count("not a libp2p private key file") == 1, proc.stderr
    assert f"rl-swarm node: Identity file {bad}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert bad.read_bytes() == before
    assert not (data / "identity").exists()
    assert str(bad) in (data / "logs" / "node.log").read_text()  # the log file still has it
    if json_events:
        assert [events.decode(line)["type"] for line in proc.stdout.splitlines()] == ["error", "node_stopped"]


@pytest.mark.slow
def test_probe_json(tmp_path):
    out = subprocess.run(CLI + ["probe", "--json", "--data-dir", str(tmp_path)], capture_output=True,
                         text=True, check=True, env=_env(), timeout=120)
    data = json.loads(out.stdout)
    assert data["pool"] in ("small", "large")
    assert data["cpu_cores"] >= 1
    assert data["device"] == "cpu"


def test_bad_arguments_exit_2(tmp_path):
    proc = subprocess.run(CLI + ["node", "--rounds", "0", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=_env())
    assert proc.returncode == 2
    assert "--rounds" in proc.stderr
