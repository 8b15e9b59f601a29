"""A hosted swarm as an attacker meets it, against the real processes (real anvil behind the real
proxy in a real `rl-swarm services`): keys everyone knows change nothing on the chain, an old
chain is upgraded in place without losing anything, a chain that is alive but silent is started
again from its state, and a second services process on one data dir touches nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.procs import CLI, ROOT, Services, env, free_port

pytestmark = pytest.mark.slow

ATTACKER_BOOT = "/ip4/6.6.6.6/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
OLD_BOOT = "/ip4/127.0.0.1/tcp/4999/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def _rpc(url: str, method: str, params=None, timeout: float = 10):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as reply:
        return json.loads(reply.read())


def make_old_chain(data: Path) -> dict:
    """A chain as `rl-swarm services` left it before it had keys of its own: the coordinator owned
    by anvil's dev account #0, the dev accounts funded, a registered peer with rewards and a win, a
    bootnode, round 1."""
    from eth_account import Account
    from web3 import Web3

    from desktop.chain.anvil import Anvil, dev_accounts
    from desktop.chain.deploy import coordinator_at, deploy_coordinator, send_signed

    chain_dir = data / "chain"
    chain_dir.mkdir(parents=True, exist_ok=True)
    anvil = Anvil().start(state_file=chain_dir / "anvil-state.json")
    try:
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        (owner, owner_key), (funder, funder_key) = dev_accounts(2)
        c = coordinator_at(w3, deploy_coordinator(w3, owner_key))
        peer_account, peer_id = Account.create(), "QmOldPeer" + "x" * 30

        def send(key, sender, call=None, **tx):
            base = {"from": sender, "nonce": w3.eth.get_transaction_count(sender), "chainId": 31337,
                    "gasPrice": w3.eth.gas_price}
            send_signed(w3, key, call.build_transaction(base) if call is not None else {**base, "gas": 21000, **tx})

        send(funder_key, funder, to=peer_account.address, value=10**18)
        f = c.functions
        send(peer_account.key, peer_account.address, f.registerPeer(peer_id))
        send(peer_account.key, peer_account.address, f.submitReward(0, 0, 5, peer_id))
        send(peer_account.key, peer_account.address, f.submitWinners(0, [peer_id], peer_id))
        send(owner_key, owner, f.addBootnodes([OLD_BOOT]))
        send(owner_key, owner, f.updateStageAndRound())
    finally:
        anvil.stop()  # SIGTERM: the state is written
    (chain_dir / "deployment.json").write_text(json.dumps({"contract": c.address, "chain_id": 31337}))
    return {"contract": c.address, "peer_id": peer_id, "peer": peer_account.address}


def chain_facts(url: str, contract: str, peer_id: str) -> dict:
    from web3 import Web3

    from desktop.chain.anvil import dev_accounts
    from desktop.chain.deploy import coordinator_at

    w3 = Web3(Web3.HTTPProvider(url))
    f = coordinator_at(w3, contract).functions
    return {"owner": f.owner().call(), "stage": f.stageManager().call(), "boot": f.bootnodeManager().call(),
            "round": f.currentRound().call(), "bootnodes": f.getBootnodes().call(),
            "rewards": f.getTotalRewards([peer_id]).call(), "wins": f.getTotalWins(peer_id).call(),
            "eoa": f.getEoa([peer_id]).call()[0],
            "dev_balances": [w3.eth.get_balance(a) for a, _ in dev_accounts(10)]}


def attack_with_public_keys(proxy_url: str, contract: str, chain_url: str) -> list[str]:
    """Every write anyone could try with the keys derived from anvil's public mnemonic, sent as
    signed transactions through the proxy (built from reads of ``chain_url``, paced under the
    proxy's rate limit). Returns how each one ended."""
    from eth_account import Account
    from web3 import Web3

    from desktop.chain.anvil import dev_accounts
    from desktop.chain.deploy import coordinator_at

    w3 = Web3(Web3.HTTPProvider(chain_url))
    f = coordinator_at(w3, contract).functions
    thief = Account.create().address
    outcomes = []
    for address, key in dev_accounts(10):
        calls = [None, f.setBootnodeManager(thief), f.setStageManager(thief), f.clearBootnodes(),
                 f.addBootnodes([ATTACKER_BOOT]), f.updateStageAndRound(), f.registerPeer("QmThief" + address[-6:])]
        for call in calls:
            for gas_price in (w3.eth.gas_price, 0):
                tx = {"from": address, "nonce": w3.eth.get_transaction_count(address), "chainId": 31337,
                      "gas": 300_000, "gasPrice": gas_price}
                tx = call.build_transaction(tx) if call is not None else {**tx, "to": thief, "value": 10**18, "gas": 21000}
                raw = Account.sign_transaction(tx, key).raw_transaction
                reply = _rpc(proxy_url, "eth_sendRawTransaction", ["0x" + raw.hex().removeprefix("0x")])
                time.sleep(0.07)
                outcomes.append("refused" if "error" in reply else "accepted")
    assert w3.eth.get_balance(thief) == 0
    return outcomes


def _hosted_data(path: Path, proxy_port: int) -> Path:
    (path / "config").mkdir(parents=True, exist_ok=True)
    (path / "config" / "config.yaml").write_text(
        f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\n"
        f"hosting:\n  enabled: true\n  bind: 127.0.0.1\n  port: {proxy_port}\n  dht_port: {free_port()}\n")
    return path


def test_an_old_chain_becomes_private_and_public_keys_change_nothing(tmp_path):
    data = _hosted_data(tmp_path / "host", free_port())
    old = make_old_chain(data)
    proxy = "http://127.0.0.1:" + (data / "config" / "config.yaml").read_text().split("port: ")[1].split()[0]
    seen = []
    for run in range(2):  # upgraded on the first start; the second start finds it in order
        services = Services(data)
        try:
            info = services.start()
            deadline = time.monotonic() + 60  # the proxy opens, the host puts its bootnode beside the old one
            while time.monotonic() < deadline and not (data / "host" / "host.json").exists():
                time.sleep(0.2)
            while time.monotonic() < deadline and len(chain_facts(info["rpc_url"], old["contract"],
                                                                 old["peer_id"])["bootnodes"]) < 2:
                time.sleep(0.5)
            keys_file = data / "chain" / "keys.json"
            assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
            keys = json.loads(keys_file.read_text())
            from eth_account import Account

            mine = {role: Account.from_key(k).address for role, k in keys.items()}
            before = chain_facts(info["rpc_url"], old["contract"], old["peer_id"])
            assert (before["owner"], before["stage"], before["boot"]) == (mine["owner"], mine["stage_manager"],
                                                                          mine["bootnode_manager"])
            assert before["dev_balances"] == [0] * 10  # the public accounts hold nothing
            # nothing of the old chain is lost
            assert before["round"] == 1 and before["rewards"] == [5] and before["wins"] == 1
            assert before["eoa"] == old["peer"] and OLD_BOOT in before["bootnodes"]
            outcomes = attack_with_public_keys(proxy, old["contract"], info["rpc_url"])
            assert set(outcomes) == {"refused"}, outcomes
            after = chain_facts(info["rpc_url"], old["contract"], old["peer_id"])
            assert after == before  # no balance, no role, no round, no bootnode moved
            assert ATTACKER_BOOT not in after["bootnodes"]
            seen.append((keys, before["owner"]))
        finally:
            services.stop()
        assert services.proc.returncode == 0
    assert seen[0] == seen[1]  # the same keys and owner on the second start
    log = (data / "logs").glob("services*.log")
    text = "".join(p.read_text(errors="replace") for p in log)
    assert "was upgraded" in text and text.count("was upgraded") == 1  # said once, on the upgrade
    assert not any(k[2:] in text for k in seen[0][0].values())  # no key in the log


def test_a_chain_that_stops_answering_is_started_again_with_its_state(tmp_path):
    services = Services(tmp_path / "data")
    try:
        info = services.start()
        marker = "0x" + "42" * 20
        assert "result" in _rpc(info["rpc_url"], "anvil_setBalance", [marker, hex(12345)])
        time.sleep(5)  # past a state dump (every 2 s)
        anvil = services.anvil()
        anvil.send_signal(signal.SIGSTOP)  # alive, silent: as a call that never ends leaves it
        started = time.monotonic()
        balance = None
        while time.monotonic() - started < 90:
            try:
                reply = _rpc(info["rpc_url"], "eth_getBalance", [marker, "latest"], timeout=2)
                balance = int(reply["result"], 16)
                break
            except OSError:
                time.sleep(1)
        assert balance == 12345, "the chain did not come back with its state"
        assert services.anvil().pid != anvil.pid
        assert not anvil.is_running() or anvil.status() == "zombie"
        assert services.proc.poll() is None
    finally:
        services.stop()
    text = "".join(p.read_text(errors="replace") for p in (tmp_path / "data" / "logs").glob("services*.log"))
    assert "has not answered" in text


def test_a_second_services_on_one_data_dir_touches_nothing(tmp_path):
    data = tmp_path / "data"
    first = Services(data)
    try:
        info = first.start()
        anvil = first.anvil()
        files = {p: p.read_bytes() for p in (data / "chain").iterdir() if p.suffix != ".json" or "state" not in p.name}
        for args in (["services", "--data-dir", str(data)],
                     ["host", "--data-dir", str(data), "--bind", "127.0.0.1", "--port", str(free_port()),
                      "--dht-port", str(free_port())]):
            second = subprocess.run(CLI + args, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)
            assert second.returncode == 2, second.stderr
            assert "already running" in second.stderr and f"pid {first.proc.pid}" in second.stderr
            assert "Traceback" not in second.stderr
        assert first.anvil().pid == anvil.pid and anvil.is_running()
        assert {p: p.read_bytes() for p in files} == files  # services.json, anvil.pid, keys: as they were
        assert "result" in _rpc(info["rpc_url"], "eth_blockNumber")
        first.kill()  # kill -9: the kernel frees the lock, no stale lock file stops the next start
        again = Services(data)
        try:
            assert again.start()["contract"] == info["contract"]
        finally:
            again.stop()
        assert again.proc.returncode == 0
    finally:
        first.stop()


def test_a_pipe_or_folder_where_the_pause_file_lives_is_said_not_hung_on(tmp_path):
    from tests.procs import EventProcess, node_args

    data = tmp_path / "data"
    data.mkdir()
    control = data / "control.json"
    os.mkfifo(control)
    for command in ("pause", "resume"):
        done = subprocess.run(CLI + [command, "--data-dir", str(data)], capture_output=True, text=True, cwd=ROOT,
                              env=env(), timeout=30)
        assert done.returncode == 2 and "named pipe" in done.stderr and "Traceback" not in done.stderr, done.stderr
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 16\n")
    node = EventProcess(node_args(data, "--rounds", "50", config=cfg), tmp_path / "node.err")
    try:
        assert node.wait_for(lambda e: e["type"] == "round_finished", 240), (tmp_path / "node.err").read_text()[-2000:]
        node.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert node.proc.wait(30) == 0
        assert time.monotonic() - started < 20
    finally:
        node.stop()
    assert control.exists() and not control.is_file()  # left as it was
    assert "named pipe" in (data / "logs").joinpath("node.log").read_text()
    control.unlink()
    control.mkdir()
    for command in ("pause", "resume"):
        done = subprocess.run(CLI + [command, "--data-dir", str(data)], capture_output=True, text=True, cwd=ROOT,
                              env=env(), timeout=30)
        assert done.returncode == 2 and "is a folder" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert control.is_dir()
