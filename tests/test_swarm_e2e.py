"""Real local swarms: `rl-swarm swarm` and hand-started peers, over a real hivemind DHT."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop import events
from tests.procs import leftovers

pytestmark = [pytest.mark.slow, pytest.mark.swarm]
CLI = [sys.executable, "-m", "desktop.cli"]


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 32\n" + extra)
    return cfg


# Level 2 of the generator is where the offline model passes about half the time: groups have
# reward spread, so peers have something worth taking from each other.
SHARING = ("  num_generations: 4\n  max_new_tokens: 96\nproblems:\n  adaptive: false\n  source: generated:2\n"
           "swarm:\n  local_groups: 2\n  external_groups: 2\n")


def test_three_peers_train_on_each_others_rollouts(tmp_path):
    cfg = tmp_path / "sharing.yaml"
    cfg.write_text("training:\n" + SHARING)
    proc = subprocess.run(CLI + ["swarm", "--peers", "3", "--rounds", "2", "--json-events",
                                 "--data-dir", str(tmp_path), "--config", str(cfg)],
                          capture_output=True, text=True, env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_peer: dict[str, list[dict]] = {}
    for line in proc.stdout.splitlines():
        event = events.decode(line)  # every line is a valid event ...
        by_peer.setdefault(event["peer"], []).append(event)  # ... tagged with its peer
    assert sorted(by_peer) == ["solver-0", "solver-1", "solver-2"]
    ids = {label: e["peer_id"] for label, evs in by_peer.items() for e in evs if e["type"] == "dht_ready"}
    assert len(set(ids.values())) == 3
    for label, evs in by_peer.items():
        others = {pid for other, pid in ids.items() if other != label}
        rollouts = [e for e in evs if e["type"] == "rollouts"]
        assert any(set(e["peers"]) == others for e in rollouts), (label, rollouts)
        steps = [e for e in evs if e["type"] == "train_step"]
        assert any(s["groups"]["external"] > 0 for s in steps), "no train step used peers' rollouts"
        # peers draw their own problems, and what they take from others is others' problems
        mine = {p for e in rollouts for p in e["own_problems"]}
        taken = [(peer, p) for e in rollouts for peer, p in e["external_problems"]]
        assert taken
        assert all(peer in others and p not in mine for peer, p in taken)
        assert [e["round"] for e in evs if e["type"] == "round_finished"] == [0, 1]
        assert evs[-1]["type"] == "node_stopped"
        assert evs[-1]["exit_code"] == 0
    problems = {label: {p for e in evs if e["type"] == "rollouts" for p in e["own_problems"]}
                for label, evs in by_peer.items()}
    assert not problems["solver-0"] & problems["solver-1"]
    assert not problems["solver-1"] & problems["solver-2"]
    assert leftovers(tmp_path) == []


def _start(tmp_path, name, cfg, *extra):
    data = tmp_path / name
    data.mkdir(exist_ok=True)
    err = open(data / "stderr.log", "wb")
    proc = subprocess.Popen(CLI + ["node", "--pool", "tiny", "--json-events", "--swarm", "--data-dir", str(data),
                                   "--config", str(cfg), "--expected-peers", "2", "--gather-timeout", "15",
                                   *extra], stdout=subprocess.PIPE, stderr=err, text=True, env=_env(),
                            start_new_session=True)
    err.close()
    return proc


def _until(proc, predicate, timeout=300):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(events.decode(line))
        if predicate(seen[-1]):
            return seen
    raise AssertionError(f"not seen; got {[e['type'] for e in seen]}")


def test_a_killed_peer_does_not_stall_the_others_and_rejoins(tmp_path):
    cfg = _config(tmp_path)
    a = _start(tmp_path, "a", cfg)
    procs = [a]
    try:
        maddr = _until(a, lambda e: e["type"] == "dht_ready")[-1]["maddrs"][0]
        b = _start(tmp_path, "b", cfg, "--initial-peer", maddr)
        c = _start(tmp_path, "c", cfg, "--initial-peer", maddr)
        procs += [b, c]
        c_seen = _until(c, lambda e: e["type"] == "round_started" and e["round"] >= 1)
        c_id = next(e["peer_id"] for e in c_seen if e["type"] == "node_started")
        c.kill()  # a crash mid-round: only the node process dies, no shutdown code runs
        c.wait(30)
        killed_at = time.monotonic()
        deadline = killed_at + 20  # its DHT process and p2pd daemon follow it down
        while leftovers(tmp_path / "c") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert leftovers(tmp_path / "c") == []
        # the others go on: each finishes two more rounds, waiting at most the gather deadline
        for proc in (a, b):
            done = _until(proc, lambda e: e["type"] == "round_finished" and e["round"] >= 3, timeout=240)
            assert done[-1]["seconds"] < 60
        assert time.monotonic() - killed_at < 240

        c2 = _start(tmp_path, "c", cfg, "--initial-peer", maddr)
        procs.append(c2)
        seen = _until(c2, lambda e: e["type"] == "round_finished")
        started = next(e for e in seen if e["type"] == "node_started")
        assert started["peer_id"] == c_id
        joined = [e for e in seen if e["type"] == "joined_round"]
        assert joined, seen
        assert joined[0]["round"] > joined[0]["previous"] >= 1, seen
        assert seen[-1]["round"] >= joined[0]["round"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert all(p.returncode in (0, -signal.SIGKILL) for p in procs)
    assert leftovers(tmp_path) == []


def test_sigterm_to_the_launcher_stops_every_peer(tmp_path):
    launcher = subprocess.Popen(CLI + ["swarm", "--peers", "2", "--rounds", "50", "--proposer", "--json-events",
                                       "--data-dir", str(tmp_path), "--config", str(_config(tmp_path))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        kinds = set()
        for line in launcher.stdout:
            event = json.loads(line)
            kinds.add((event["peer"], event["type"]))
            if ("solver-1", "round_finished") in kinds and ("proposer-2", "proposer") in kinds:
                break
        launcher.send_signal(signal.SIGTERM)
        launcher.stdout.read()
        assert launcher.wait(120) == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert leftovers(tmp_path) == []
