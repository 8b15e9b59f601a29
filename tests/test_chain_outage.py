"""A chain and login server that go away under a running node: nothing lost, nothing made up."""

from __future__ import annotations

import json
import socket
import time

import pytest

from desktop.chain.client import ChainError
from desktop.chain.connect import FollowingClient
from desktop.chain.profiles import local_profile, write_services_file
from desktop.services.stack import free_or
from tests.procs import EventProcess, Services, node_args


def test_a_port_in_time_wait_is_still_ours():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end of the connection sits in TIME_WAIT
        client.close()
    assert free_or(port) == port


def test_following_client_finds_services_that_moved(tmp_path):
    path = tmp_path / "services.json"
    info = {"rpc_url": "http://127.0.0.1:1", "contract": "0x" + "11" * 20, "login_url": "http://127.0.0.1:2",
            "api_token_file": str(tmp_path / "token"), "chain_id": 31337}
    write_services_file(path, info)
    client = FollowingClient(path, local_profile(path), "org", every=0)
    assert client.rpc_url == "http://127.0.0.1:1"
    path.unlink()  # services stopped: the last client is kept
    assert client.login_url == "http://127.0.0.1:2"
    time.sleep(0.01)
    write_services_file(path, {**info, "rpc_url": "http://127.0.0.1:3", "login_url": "http://127.0.0.1:4"})
    with pytest.raises(ChainError):  # the next read looks at services.json first, then fails: nothing listens
        client.current_round(attempts=1)
    assert (client.rpc_url, client.login_url, client.org_id) == ("http://127.0.0.1:3", "http://127.0.0.1:4", "org")
    assert client.reloads == 1


def _seen(event) -> dict:
    assert event is not None, "the node did not get there in time"
    return event


@pytest.mark.slow
def test_chain_outage_loses_nothing_and_claims_no_round(tmp_path):
    svc_dir, node_dir = tmp_path / "services", tmp_path / "node"
    services = Services(svc_dir)
    node = None
    try:
        info = services.start()
        org = services.account("outage@local.rl-swarm.net")
        (node_dir / "config").mkdir(parents=True)
        (node_dir / "config" / "config.yaml").write_text("training:\n  max_new_tokens: 24\n")
        node = EventProcess(node_args(node_dir, "--services", str(services.services_file), "--org-id", org),
                            tmp_path / "node.err")
        _seen(node.wait_for(lambda e: e["type"] == "chain_queued", 240))
        _seen(node.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0, 60))
        services.stop()  # chain and login gone
        down = _seen(node.wait_for(lambda e: e["type"] == "chain_status" and not e["reachable"], 60))
        finished_before = node.count("round_finished")
        _seen(node.wait_for(lambda e: e["type"] == "round_finished"
                            and node.count("round_finished") >= finished_before + 3, 120))
        offline = [e for e in node.events if e["type"] == "round_started" and e["ts"] > down["ts"]]
        assert len({e["round"] for e in offline}) == 1  # no race ahead: one number, the last chain round's
        info2 = services.start()  # back, on the same ports
        assert info2["rpc_url"] == info["rpc_url"]
        assert info2["login_url"] == info["login_url"]
        back = time.monotonic()
        _seen(node.wait_for(lambda e: e["type"] == "chain_status" and e["reachable"], 60))
        _seen(node.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0 and e["sent"] > 0, 60))
        assert time.monotonic() - back < 45
        _seen(node.wait_for(lambda e: e["type"] == "chain_queued", 120))  # the round after the outage is queued
        _seen(node.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0, 60))
    finally:
        if node is not None:
            node.stop()
        services.stop()
    queued = [e for e in node.events if e["type"] == "chain_queued"]
    played = [e for e in node.events if e["type"] == "round_finished"]
    last_queued_at = max(e["ts"] for e in queued)
    # every round's reward went into some submission: the offline ones into the first one after
    assert sum(e["rounds"] for e in queued) == len([e for e in played if e["ts"] <= last_queued_at])
    assert any(e["rounds"] > 1 for e in queued)
    state = json.loads((node_dir / "chain" / "submissions.json").read_text())
    assert state["items"] == []
    assert [k for k, v in state["done"].items() if v["status"] == "dropped"] == []
    sent_rewards = [k for k, v in state["done"].items() if k.startswith("reward:") and v["status"] == "sent"]
    assert len(sent_rewards) == len(queued)
