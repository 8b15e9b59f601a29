"""Bootnodes: never ourselves, only those that answer, a first peer may start alone, stale ones replaced."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from desktop.swarm.bootnodes import answering_bootnodes
from desktop.services.login_server import LoginServer
from tests.chain_fixtures import unique_peer_id

CLI = [sys.executable, "-m", "desktop.cli"]
ME = "QmX96pPUAcLkPe5ZoACVNiaNHjYonYKbTQVWjgTmn7jbVe"
OTHER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_answering_bootnodes_skips_self_garbage_and_the_dead():
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen(4)
        alive = f"/ip4/127.0.0.1/tcp/{live.getsockname()[1]}/p2p/{OTHER}"
        dead = f"/ip4/127.0.0.1/tcp/{_dead_port()}/p2p/{OTHER}"
        myself = f"/ip4/127.0.0.1/tcp/{live.getsockname()[1]}/p2p/{ME}"
        usable, refused = answering_bootnodes([myself, "garbage", dead, alive, alive], ME, timeout=2)
    assert usable == [alive]
    assert refused[myself] == "this peer itself"
    assert refused["garbage"] == "not a dialable multiaddr"
    assert dead in refused


@pytest.fixture
def login(tmp_path, anvil, fresh_coordinator, dev_accounts):
    srv = LoginServer(tmp_path, anvil.rpc_url, fresh_coordinator.address, port=0,
                      funder_key=dev_accounts[0][1], manager_key=dev_accounts[0][1]).run_in_thread()
    yield srv, fresh_coordinator
    srv.stop_thread()


def _add(srv, addrs):
    req = urllib.request.Request(srv.url + "/api/add-bootnodes", data=json.dumps({"addrs": addrs}).encode(),
                                 method="POST", headers={"Authorization": f"Bearer {srv.api_token}",
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        return json.loads(reply.read())


def test_a_restarted_peer_replaces_its_old_address(login):
    srv, coordinator = login
    me, other = unique_peer_id(), unique_peer_id()
    first = f"/ip4/127.0.0.1/tcp/4001/p2p/{me}"
    _add(srv, [f"/ip4/127.0.0.1/tcp/5001/p2p/{other}"])
    _add(srv, [first])
    assert _add(srv, [first]) == {"hash": None, "added": 0, "removed": 0}  # the same run again: no change
    second = f"/ip4/127.0.0.1/tcp/4002/p2p/{me}"
    reply = _add(srv, [second])
    assert reply["added"] == 1
    assert reply["removed"] == 1
    assert coordinator.functions.getBootnodes().call() == [f"/ip4/127.0.0.1/tcp/5001/p2p/{other}", second]


@pytest.mark.slow
def test_the_list_stays_bounded(login):
    srv, coordinator = login
    for n in range(20):
        _add(srv, [f"/ip4/127.0.0.1/tcp/{6000 + n}/p2p/{unique_peer_id()}"])
    listed = coordinator.functions.getBootnodes().call()
    assert len(listed) == 16
    assert listed[-1].startswith("/ip4/127.0.0.1/tcp/6019/")


@pytest.mark.slow
@pytest.mark.swarm
def test_local_swarm_runs_again_on_the_same_data_dir(tmp_path):
    """The first run leaves its first peer's address on the persisted chain; later runs must not
    try to bootstrap from it (that peer is gone, and it is this very peer)."""
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 24\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    for run in range(2):
        done = subprocess.run(CLI + ["swarm", "--peers", "2", "--rounds", "1", "--data-dir", str(tmp_path),
                                     "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, (run, done.stdout[-2000:], done.stderr[-2000:])
        finished = [line for line in done.stdout.splitlines() if " finished in " in line]
        assert {line.split()[0] for line in finished} == {"solver-0", "solver-1"}, done.stdout
