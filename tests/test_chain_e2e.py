"""A local swarm on the local chain: registration, rewards and votes on chain, state that survives."""

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from desktop import events

pytestmark = [pytest.mark.slow, pytest.mark.swarm]
CLI = [sys.executable, "-m", "desktop.cli"]


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def _leftovers(path):
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in proc.info["cmdline"] or []):
                found.append(proc.info["cmdline"][0])
        except psutil.Error:
            pass
    return found


def test_swarm_submits_to_the_local_chain_and_the_chain_remembers(tmp_path):
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 32\n")
    run = subprocess.run(CLI + ["swarm", "--peers", "2", "--rounds", "2", "--json-events", "--data-dir", str(tmp_path),
                                "--config", str(cfg)], capture_output=True, text=True, env=_env(), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    evs = [events.decode(line) for line in run.stdout.splitlines()]
    ids = {e["peer"]: e["peer_id"] for e in evs if e["type"] == "node_started"}
    for label in ("solver-0", "solver-1"):
        submitted = [e for e in evs if e["peer"] == label and e["type"] == "chain_submitted"]
        assert sum(e["sent"] + e["already"] for e in submitted) >= 5, submitted  # register + 2 x (reward, vote)
        assert all(e["failed"] == 0 for e in submitted)
    assert _leftovers(tmp_path) == []  # peers, DHT daemons and anvil all gone

    services_dir = tmp_path / "swarm" / "services"  # start the chain again: its state was kept
    services = subprocess.Popen(CLI + ["services", "--json", "--data-dir", str(services_dir)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())
    try:
        info = json.loads(services.stdout.readline())
        assert info["contract"].startswith("0x")
        status = subprocess.run(CLI + ["chain", "status", "--json", "--data-dir", str(services_dir)],
                                capture_output=True, text=True, env=_env(), timeout=120, check=True)
        report = json.loads(status.stdout)
        assert {p["peer_id"] for p in report["peers"]} == set(ids.values())
        assert report["round"] >= 2
        assert sum(p["wins"] for p in report["peers"]) == 4  # each peer voted in each round
        assert sum(e["wins"] for e in report["leaderboard"]) == 4
        text = subprocess.run(CLI + ["chain", "status", "--data-dir", str(services_dir)], capture_output=True,
                              text=True, env=_env(), timeout=120, check=True).stdout
        assert "winner leaderboard" in text
        assert report["peers"][0]["name"] in text
    finally:
        services.send_signal(signal.SIGTERM)
        assert services.wait(60) == 0
    assert _leftovers(services_dir) == []


def test_chain_status_without_a_chain_says_how_to_start_one(tmp_path):
    proc = subprocess.run(CLI + ["chain", "status", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 1
    assert "rl-swarm services" in proc.stderr
    assert "Traceback" not in proc.stderr
