"""What a container needs from the product, each part on its own (make docker-test runs them all in
a real image): the data dir and model cache named by the environment, a local swarm that runs until
stopped, a health verdict from what the peers said, and `node --join` that joins once."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from desktop.cli.health import judge
from desktop.cli.join import joined_already, swarm_file
from desktop.local.launcher import LocalSwarm
from desktop.utils.paths import DATA_DIR_ENV, MODEL_CACHE_ENV, AppPaths
from tests.procs import CLI, ROOT, env
from tests.test_invites import invite


def test_the_environment_names_the_data_dir_and_a_shared_model_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(MODEL_CACHE_ENV, raising=False)
    assert AppPaths.default(tmp_path / "peer").models == tmp_path / "peer" / "models"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "volume"))
    paths = AppPaths.default()
    assert (paths.data, paths.config_file) == (tmp_path / "volume", tmp_path / "volume" / "config" / "config.yaml")
    assert AppPaths.default(tmp_path / "given").data == tmp_path / "given"  # --data-dir still wins
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "cache"))
    assert AppPaths.default(tmp_path / "a").models == AppPaths.default(tmp_path / "b").models == tmp_path / "cache"


def test_a_swarm_of_zero_rounds_runs_until_stopped():
    endless = LocalSwarm(Path("/tmp/nowhere"), peers=2, rounds=0, chain=False)
    assert all("--rounds" not in endless._command(p, []) for p in endless.peers)
    three = LocalSwarm(Path("/tmp/nowhere"), peers=2, rounds=3, chain=False)
    assert all(c[c.index("--rounds") + 1] == "3" for c in (three._command(p, []) for p in three.peers))
    bad = subprocess.run(CLI + ["swarm", "--rounds", "-1"], capture_output=True, text=True, cwd=ROOT, env=env(),
                         timeout=120)
    assert bad.returncode == 2 and "--rounds must be 0 (until stopped) or more" in bad.stderr


def _peer(label: str, state: str, updated: float, **more) -> dict:
    return {"label": label, "state": state, "updated": updated, "round": 7, **more}


def test_health_is_judged_from_what_the_peers_said():
    now = time.time()
    ok, said = judge({"peers": [_peer("peer-0", "training", now), _peer("peer-1", "paused", now - 60)]}, now, 1800)
    assert ok and said == "peer-0 training round 7, peer-1 paused round 7"
    ok, said = judge({"peers": [_peer("peer-0", "starting", now, round=None)]}, now, 1800)
    assert ok and said == "peer-0 starting"  # still loading its model
    crashed = _peer("peer-1", "crashed", now, exit={"exit_code": 1})
    assert judge({"peers": [_peer("peer-0", "training", now), crashed]}, now, 1800) == \
        (False, "peer-1 crashed (exit code 1)")
    assert judge({"peers": [_peer("peer-0", "waiting", now - 3600)]}, now, 1800) == \
        (False, "no news from any peer for 60 min")
    assert judge({"peers": [_peer("peer-0", "stopped", now)]}, now, 1800) == (False, "every peer has stopped")
    assert judge({"peers": []}, now, 1800) == (False, "the dashboard lists no peer")


def test_health_without_a_dashboard_says_unhealthy_in_one_line(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("dashboard:\n  port: 1\n")  # nothing listens on port 1
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "token").write_bytes(b"x" * 1_000_000)  # no token of ours: read no further
    done = subprocess.run(CLI + ["health", "--data-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          env=env(), timeout=120)
    assert done.returncode == 1
    assert done.stdout == "unhealthy: no dashboard of this data dir answers on 127.0.0.1:1\n" and not done.stderr


def test_a_data_dir_that_joined_a_swarm_is_not_joined_again(tmp_path):
    code = invite().code()
    assert not joined_already(code, tmp_path)
    saved = {"name": "lab swarm", "rpc": "http://10.0.0.1:8546", "chain_id": 31337, "contract": "0x" + "AB" * 20}
    swarm_file(tmp_path).write_text(json.dumps(saved))
    assert joined_already(code, tmp_path)  # the same swarm, whichever invite brought this peer in
    assert not joined_already(invite(contract="0x" + "cd" * 20).code(), tmp_path)  # another swarm: join it
    swarm_file(tmp_path).write_text(json.dumps({**saved, "chain_id": "not a number"}))
    assert not joined_already(code, tmp_path)
