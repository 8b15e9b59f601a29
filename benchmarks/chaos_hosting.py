"""The chaos suite's attacks on a hosted swarm, each against a real `rl-swarm services` with hosting
on (real anvil behind the real proxy and join desk) and each a row (see chaos.py):

- public keys via proxy: signed writes with every key of anvil's public mnemonic, on a chain that
  was made before the services had keys of their own (upgraded in place on start)
- looping eth_call: endless loops asked of the chain through the proxy, by state override and by a
  looping contract with all the gas in the world, many at once
- second services: a second `rl-swarm services` / `rl-swarm host` on a running data dir, then a
  kill -9 of the first and a fresh start
- concurrent joins: many signed joins at once on a one-use invite, the same address and others
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaos import Row
from tests.procs import CLI, ROOT, Services, env, free_port
from tests.test_host_attacks import _rpc, attack_with_public_keys, chain_facts, make_old_chain

LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP
LOOP_INIT = "0x63" + LOOP[2:] + "600052" + "6004601cf3"  # deploys LOOP as runtime code


def _hosted(work: Path) -> tuple[Path, str]:
    data, port = work / "host", free_port()
    (data / "config").mkdir(parents=True, exist_ok=True)
    (data / "config" / "config.yaml").write_text(
        f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\n"
        f"hosting:\n  enabled: true\n  bind: 127.0.0.1\n  port: {port}\n  dht_port: {free_port()}\n")
    return data, f"http://127.0.0.1:{port}"


def _start(data: Path) -> tuple[Services, dict]:
    services = Services(data)
    info = services.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (data / "host" / "host.json").exists():
        time.sleep(0.2)
    return services, info


def public_keys(work: Path, quick: bool) -> Row:
    data, proxy = _hosted(work)
    old = make_old_chain(data)
    services, info = _start(data)
    try:
        time.sleep(2)  # the host's own bootnode lands on the chain
        before = chain_facts(info["rpc_url"], old["contract"], old["peer_id"])
        outcomes = attack_with_public_keys(proxy, old["contract"], info["rpc_url"])
        after = chain_facts(info["rpc_url"], old["contract"], old["peer_id"])
    finally:
        services.stop()
    mined = outcomes.count("accepted")
    kept = after == before and before["rewards"] == [5] and before["round"] == 1
    return Row(len(outcomes), outcomes.count("refused"), mined + (not kept),
               f"{len(outcomes)} signed writes with anvil's 10 public keys: {mined} accepted; roles, round, "
               f"bootnodes, balances unchanged: {after == before}; old chain kept its rewards and round: {kept}")


def looping_calls(work: Path, quick: bool) -> Row:
    from eth_account import Account
    from web3 import Web3

    from desktop.chain.deploy import send_signed

    data, proxy = _hosted(work)
    services, info = _start(data)
    count = 20 if quick else 200
    try:
        attacker = Account.create()  # funded as a joiner would be (here by the host's own admin access)
        _rpc(info["rpc_url"], "anvil_setBalance", [attacker.address, hex(10**18)])
        w3 = Web3(Web3.HTTPProvider(proxy))
        looping = send_signed(w3, attacker.key, {"data": LOOP_INIT, "gas": 100_000, "gasPrice": w3.eth.gas_price,
                                                 "chainId": w3.eth.chain_id, "nonce": 0})["contractAddress"]
        dead = "0x000000000000000000000000000000000000dEaD"
        asks = [("eth_call", [{"to": dead, "gas": "0xffffffffffff"}, "latest", {dead: {"code": LOOP}}]),
                ("eth_call", [{"to": looping, "gas": "0xffffffffffff"}, "latest"]),
                ("eth_estimateGas", [{"to": looping, "gas": "0xffffffffffff"}])]
        reads: list[float] = []
        stop = threading.Event()

        def keep_reading() -> None:  # a peer's ordinary reads, timed, while the attack runs
            while not stop.is_set():
                started = time.monotonic()
                try:
                    _rpc(info["rpc_url"], "eth_blockNumber", timeout=30)
                    reads.append(time.monotonic() - started)
                except OSError:
                    reads.append(30.0)
                time.sleep(0.1)

        reader = threading.Thread(target=keep_reading, daemon=True)
        reader.start()

        def one(i: int) -> float:
            started = time.monotonic()
            try:
                _rpc(proxy, *asks[i % len(asks)], timeout=30)
            except urllib.error.HTTPError:  # 429 past the per-client burst: refused at once, also an answer
                pass
            except OSError:
                return 30.0
            return time.monotonic() - started

        with ThreadPoolExecutor(8) as pool:  # under the proxy's per-client burst
            took = list(pool.map(one, range(count)))
        time.sleep(1)
        stop.set()
        reader.join(5)
        anvil = services.anvil()
        cpu = anvil.cpu_percent(interval=1.0) if anvil else -1.0
    finally:
        services.stop()
    slow = sum(t >= 5 for t in took)
    return Row(count, count - slow, slow,
               f"{count} endless-loop calls: slowest answer {max(took):.2f} s; a peer's reads meanwhile "
               f"median {statistics.median(reads) * 1000:.0f} ms, slowest {max(reads):.2f} s; anvil CPU after {cpu:.0f}%")


def second_services(work: Path, quick: bool) -> Row:
    data, _ = _hosted(work)
    tries = 2 if quick else 10
    first, info = _start(data)
    refused, lost = 0, 0
    try:
        anvil = first.anvil()
        kept = (data / "chain" / "services.json").read_bytes()
        for i in range(tries):
            args = (["services", "--data-dir", str(data)] if i % 2 == 0 else
                    ["host", "--data-dir", str(data), "--bind", "127.0.0.1", "--port", str(free_port())])
            done = subprocess.run(CLI + args, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)
            untouched = (first.anvil() is not None and first.anvil().pid == anvil.pid
                         and (data / "chain" / "services.json").read_bytes() == kept
                         and "result" in _rpc(info["rpc_url"], "eth_blockNumber"))
            refused += done.returncode == 2 and "already running" in done.stderr and untouched
            lost += not untouched
        first.kill()  # kill -9: the lock goes with the process
        started = time.monotonic()
        again, _ = _start(data)
        restart_s = time.monotonic() - started
        again.stop()
        lost += again.proc.returncode != 0
    finally:
        first.stop()
    return Row(tries + 1, refused + (lost == 0), lost,
               f"{refused}/{tries} second starts refused (exit 2) with the first's chain untouched; "
               f"after kill -9 of the first a new start took {restart_s:.1f} s")


def concurrent_joins(work: Path, quick: bool) -> Row:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from web3 import Web3

    from desktop.services.invites import decode, join_message

    data, _ = _hosted(work)
    services, info = _start(data)
    same_count, others_count = (20, 10) if quick else (100, 50)
    try:
        made = subprocess.run(CLI + ["host", "invite", "--uses", "1", "--data-dir", str(data)], capture_output=True,
                              text=True, cwd=ROOT, env=env(), timeout=120)
        invite = decode(made.stdout.split()[0])
        w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
        keys = json.loads((data / "chain" / "keys.json").read_text())
        funder = Account.from_key(keys["funder"]).address
        funder_before = w3.eth.get_balance(funder)

        def join(account) -> dict:
            def post(path: str, body: dict) -> dict:
                import urllib.error
                import urllib.request

                req = urllib.request.Request(invite.join + path, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=60) as reply:
                        return json.loads(reply.read())
                except urllib.error.HTTPError as err:
                    return json.loads(err.read() or b"{}")

            nonce = post("/challenge", {"invite": invite.id, "secret": invite.secret}).get("nonce", "")
            message = join_message(invite.chain_id, invite.contract, invite.id, nonce, account.address)
            signature = Account.sign_message(encode_defunct(text=message), private_key=account.key).signature.hex()
            return post("", {"invite": invite.id, "secret": invite.secret, "address": account.address,
                             "nonce": nonce, "signature": "0x" + signature.removeprefix("0x")})

        same = Account.create()
        crowd = [same] * same_count + [Account.create() for _ in range(others_count)]
        with ThreadPoolExecutor(6) as pool:  # paced under the proxy's per-client rate limit
            answers = list(pool.map(join, crowd))
        funded = [a for a, r in zip(crowd, answers) if r.get("funded")]
        paid = funder_before - w3.eth.get_balance(funder)
    finally:
        services.stop()
    ok = len(funded) == 1 and funded[0] is same and paid <= 10**18 + 10**16
    return Row(len(crowd), len(crowd) if ok else 0, 0 if ok else len(funded),
               f"{len(crowd)} joins at once on a 1-use invite ({same_count} by one address): "
               f"{len(funded)} funded, {paid / 1e18:.3f} ETH paid out")


SCENARIOS = {"public keys via proxy": public_keys, "looping eth_call": looping_calls,
             "second services": second_services, "concurrent joins": concurrent_joins}
