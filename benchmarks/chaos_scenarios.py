"""The chaos suite's scenarios: each takes (work dir, quick) and returns a Row (see chaos.py)."""

from __future__ import annotations

import json
import random
import signal
import statistics
import subprocess
import time
from pathlib import Path

import psutil

from chaos import Row
from chaos_hosting import SCENARIOS as HOSTING
from tests.procs import CLI, ROOT, EventProcess, Services, env, leftovers, node_args

FAST = "training:\n  max_new_tokens: 48\n  num_generations: 4\n"
HF_SECRET = "hf_chaosSecretTokenThatMustNeverBeLogged0123"


def _fast_config(work: Path, extra: str = "") -> Path:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "fast.yaml"
    cfg.write_text(FAST + extra)
    return cfg


def _checkpoints_load(data: Path) -> bool:
    import torch

    for path in (data / "checkpoints").glob("round-*.pt"):
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            return False
    return True


# --- kill -9 ---------------------------------------------------------------------------------

def node_kill(work: Path, quick: bool) -> Row:
    runs, rng = (3 if quick else 50), random.Random(1)
    data, cfg = work / "node", _fast_config(work)
    first = EventProcess(node_args(data, config=cfg), work / "node.err")
    started = first.wait_for(lambda e: e["type"] == "node_started", 120)
    first.wait_for(lambda e: e["type"] == "checkpoint", 120)
    peer, pem = started["peer_id"], (data / "identity" / "swarm.pem").read_bytes()
    proc, survived, lost, resume = first, 0, 0, []
    for _ in range(runs):
        time.sleep(rng.uniform(0, 3))  # model load, a round, a checkpoint write: anywhere
        proc.kill()
        intact = _checkpoints_load(data) and (data / "identity" / "swarm.pem").read_bytes() == pem
        t = time.monotonic()
        proc = EventProcess(node_args(data, config=cfg), work / "node.err")
        again = proc.wait_for(lambda e: e["type"] == "node_started", 60)
        playing = proc.wait_for(lambda e: e["type"] == "round_started", 60)
        seconds = time.monotonic() - t
        resumed = again is not None and again["round"] > 0
        ok = intact and again is not None and again["peer_id"] == peer and playing is not None and resumed
        survived += ok and seconds <= 10
        lost += not intact
        resume.append(seconds)
    proc.stop()
    return Row(runs, survived, lost, f"resume {max(resume):.1f} s max, {statistics.median(resume):.1f} s median; "
                                     f"same peer id; checkpoints load")


def services_kill(work: Path, quick: bool) -> Row:
    from desktop.chain.client import CoordinatorClient
    from desktop.identity import create_identity

    runs, rng = (2 if quick else 50), random.Random(2)
    services = Services(work / "svc")
    info = services.start()
    org = services.account("kill@local.rl-swarm.net")
    survived = lost = 0
    restart = []
    for i in range(runs):
        peer = create_identity(work / f"p{i}.pem").peer_id
        services.api("/api/register-peer", {"orgId": org, "peerId": peer})
        time.sleep(rng.uniform(2.5, 4))  # past one state dump
        services.kill()  # the services process dies outright; its anvil lives on
        t = time.monotonic()
        again = services.start()
        restart.append(time.monotonic() - t)
        client = CoordinatorClient(again["rpc_url"], again["contract"], login_url=again["login_url"],
                                   api_token=None, org_id=None)
        kept = client.eoa_of([peer])[peer] is not None
        files = all(_json_ok(p) for p in (services.services_file, work / "svc" / "chain" / "deployment.json",
                                          work / "svc" / "chain" / "anvil-state.json"))
        anvils = sum("anvil" in c for c in leftovers(work / "svc"))
        ok = again["contract"] == info["contract"] and kept and files and anvils == 1
        survived += ok
        lost += not kept
    services.stop()
    return Row(runs, survived, lost, f"restart {max(restart):.1f} s max; chain kept; one anvil")


def anvil_kill(work: Path, quick: bool) -> Row:
    from desktop.chain.anvil import rpc_call
    from desktop.chain.client import CoordinatorClient
    from desktop.identity import create_identity

    runs = 2 if quick else 50
    services = Services(work / "svc")
    info = services.start()
    org = services.account("anvil@local.rl-swarm.net")
    client = CoordinatorClient(info["rpc_url"], info["contract"], login_url=info["login_url"], api_token=None,
                               org_id=None)
    survived = lost = 0
    back = []
    for i in range(runs):
        peer = create_identity(work / f"p{i}.pem").peer_id
        services.api("/api/register-peer", {"orgId": org, "peerId": peer})
        time.sleep(2 * 2 + 1)  # two state dumps
        anvil = services.anvil()
        anvil.kill()
        t, answered = time.monotonic(), False
        while time.monotonic() - t < 20 and not answered:
            try:
                answered = rpc_call(info["rpc_url"], "eth_chainId", timeout=1) is not None
            except Exception:
                time.sleep(0.2)
        back.append(time.monotonic() - t)
        kept = answered and client.eoa_of([peer])[peer] is not None
        survived += answered and kept
        lost += answered and not kept
    services.stop()
    return Row(runs, survived, lost, f"chain back on the same URL in {max(back):.1f} s max; registrations kept")


def app_kill(work: Path, quick: bool) -> Row:
    runs = 1 if quick else 10
    data = work / "app"
    (data / "config").mkdir(parents=True, exist_ok=True)
    (data / "config" / "config.yaml").write_text("profile: local\n" + FAST)
    (data / "config" / "gui.ini").write_text("[first_run]\ndone=true\n")
    (data / "login").mkdir(exist_ok=True)
    (data / "login" / "userData.json").write_text('{"org": {"orgId": "org", "email": "a@b.c", "address": "0x'
                                                  + "1" * 40 + '"}}')
    survived, gone_in = 0, []
    for _ in range(runs + 1):  # the last launch only checks that the app starts again
        app = subprocess.Popen(CLI + ["gui", "--data-dir", str(data)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env(QT_QPA_PLATFORM="offscreen",
                                                                  QTWEBENGINE_DISABLE_SANDBOX="1"))
        kids = _children_running(app, ("anvil", "p2pd"), 240)
        if len(gone_in) == runs:
            app.send_signal(signal.SIGTERM)
            app.wait(60)
            survived += bool(kids) and survived == runs
            break
        app.kill()
        app.wait(30)
        t = time.monotonic()
        _, alive = psutil.wait_procs(kids, timeout=30)
        gone_in.append(time.monotonic() - t)
        survived += bool(kids) and not alive
        for proc in alive:
            proc.kill()
    return Row(runs, min(survived, runs), 0, f"every child gone {max(gone_in, default=0):.1f} s after the app; "
                                             "starts again")


def _children_running(app, wanted, timeout) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.poll() is None:
        kids = psutil.Process(app.pid).children(recursive=True)
        names = set()
        for kid in kids:
            try:
                names.add(kid.name())
            except psutil.Error:
                pass
        if all(any(w in n for n in names) for w in wanted):
            return kids
        time.sleep(0.5)
    return []


def _json_ok(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


# --- outage ----------------------------------------------------------------------------------

def _chain_swarm(work: Path, services: Services, peers: int, cfg: Path, **extra_env) -> list[EventProcess]:
    info = services.info
    nodes, boot = [], []
    for i in range(peers):
        org = services.account(f"peer{i}@local.rl-swarm.net")
        extra = ["--swarm", "--services", str(services.services_file), "--org-id", org]
        extra += ["--publish-bootnode"] if i == 0 else [x for m in boot for x in ("--initial-peer", m)]
        nodes.append(EventProcess(node_args(work / f"peer{i}", *extra, config=cfg), work / f"peer{i}.err",
                                  extra_env))
        if i == 0:
            ready = nodes[0].wait_for(lambda e: e["type"] == "dht_ready", 120)
            boot = ready["maddrs"] if ready else []
    assert info
    return nodes


def outage(work: Path, quick: bool) -> Row:
    down_s = 20 if quick else 300
    services = Services(work / "svc")
    services.start()
    nodes = _chain_swarm(work, services, 2, _fast_config(work))
    try:
        for n in nodes:
            assert n.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0, 300), "no submission"
        services.stop()
        time.sleep(down_s)
        services.start()
        back = time.monotonic()
        reconnect = []
        for n in nodes:
            n.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0 and e["sent"] > 0, 120)
            reconnect.append(time.monotonic() - back)
            n.wait_for(lambda e: e["type"] == "chain_queued", 120)
            n.wait_for(lambda e: e["type"] == "chain_submitted" and e["pending"] == 0, 60)
    finally:
        for n in nodes:
            n.stop()
        services.stop()
    lost = survived = 0
    for i, n in enumerate(nodes):
        queued = [e for e in n.events if e["type"] == "chain_queued"]
        played = [e for e in n.events if e["type"] == "round_finished" and e["ts"] <= max(q["ts"] for q in queued)]
        state = json.loads((work / f"peer{i}" / "chain" / "submissions.json").read_text())
        dropped = [k for k, v in state["done"].items() if v["status"] == "dropped"]
        missing = len(played) - sum(e["rounds"] for e in queued)
        lost += len(dropped) + len(state["items"]) + max(0, missing)
        survived += not dropped and not state["items"] and missing == 0 and reconnect[i] <= 30
    return Row(2, survived, lost, f"down {down_s} s; reconnected in {max(reconnect):.0f} s max; "
                                  f"every round's reward submitted once")


# --- hostile swarm -----------------------------------------------------------------------------

def hostile(work: Path, quick: bool) -> Row:
    from chaos_hostile import attack

    total = 500 if quick else 10_000
    services = Services(work / "svc")
    services.start()
    cfg = _fast_config(work, "swarm:\n  gather_timeout: 20\n  expected_peers: 2\n")
    nodes = _chain_swarm(work, services, 3, cfg)
    try:
        for n in nodes:
            assert n.wait_for(lambda e: e["type"] == "rollouts" and len(e["peers"]) == 2, 300), "no exchange"
        for n in nodes:  # warmed up: allocator pools and caches filled before the baseline is taken
            r0 = n.count("round_finished")
            n.wait_for(lambda e, n=n, r0=r0: e["type"] == "round_finished" and n.count("round_finished") >= r0 + 3, 300)
        rss_before = [n.rss_mb() for n in nodes]
        first_round = [n.count("round_finished") for n in nodes]
        start = [len(n.events) for n in nodes]  # judged from here: before it, peers were still joining
        refused, sent = attack(work / "attacker", nodes[0].events, total, services)
        for n, r0 in zip(nodes, first_round):  # a few more rounds after the attack
            n.wait_for(lambda e, n=n, r0=r0: e["type"] == "round_finished" and n.count("round_finished") >= r0 + 3, 300)
        rss_after = [n.rss_mb() for n in nodes]
        alive = all(n.proc.poll() is None for n in nodes)
        end = [len(n.events) for n in nodes]  # judged up to here: once one stops, the others wait for it
    finally:
        for n in nodes:
            n.stop()
        services.stop()
    genuine = {e["peer_id"] for n in nodes for e in n.events if e["type"] == "dht_ready"}
    rollouts = [e for n in nodes for e in n.events if e["type"] == "rollouts"]
    accepted_hostile = sum(bool(set(e["peers"]) - genuine) for e in rollouts)
    window = [e for n, i, j in zip(nodes, start, end) for e in n.events[i:j]]  # the attack and the rounds after
    full_waits = sum(1 for e in window if e["type"] == "round_finished" and e["comm_s"] >= 20)
    seen = [len(e["peers"]) for e in window if e["type"] == "rollouts"]
    every_round = bool(seen) and all(k == 2 for k in seen)
    growth = max(a / max(1.0, b) - 1 for a, b in zip(rss_after, rss_before))
    ok = alive and accepted_hostile == 0 and refused == sent and full_waits == 0 and every_round and growth < 0.10
    return Row(1, int(ok), accepted_hostile, f"{sent} hostile records, {refused} refused; genuine peers exchanged "
                                             f"every round: {every_round} ({len(seen)} rounds); full-timeout waits {full_waits}; "
                                             f"RSS {growth:+.0%}")


# --- judge, API, secrets, soak -------------------------------------------------------------------

def judge_exploits(work: Path, quick: bool) -> Row:
    import textwrap

    from desktop.codezero.judges import ExecutionJudge
    from tests.test_judge_exploits import EXPLOITS, PROBLEM

    judge = ExecutionJudge()
    scores = {name: judge.judge(PROBLEM, textwrap.dedent(code)) for name, code in EXPLOITS.items()}
    passed = [n for n, s in scores.items() if s]
    return Row(len(scores), len(scores) - len(passed), len(passed), "every exploit scores 0" if not passed
               else f"passed: {', '.join(passed)}")


def api_fuzz(work: Path, quick: bool) -> Row:
    from chaos_hostile import fuzz_api

    services = Services(work / "svc")
    services.start()
    try:
        before = services.rss_mb()
        count, errors = fuzz_api(services, 400 if quick else 5000)
        time.sleep(1)
        growth = services.rss_mb() / max(1.0, before) - 1
        alive = services.proc.poll() is None
    finally:
        services.stop()
    return Row(count, count - errors if alive else 0, errors, f"no 5xx: {errors == 0}; services RSS {growth:+.0%}")


def secrets(work: Path, quick: bool) -> Row:
    """Every log and output file the other scenarios left (run it last) against every secret."""
    root = work.parent
    needles = {HF_SECRET}
    for path in list(root.rglob("api_token")) + list(root.rglob("session_secret")):
        needles.add(path.read_text().strip())
    for pem in root.rglob("swarm.pem"):
        needles.add(pem.read_bytes()[-64:].hex())
    for keys in root.rglob("keys.json"):  # the services' chain keys
        needles |= {key.removeprefix("0x") for key in json.loads(keys.read_text()).values()}
    needles.discard("")
    hits, files = [], 0
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix in (".pt", ".pem", ".safetensors") or path.name in (
                "api_token", "session_secret", "keys.json") or "secrets" in path.parts:
            continue
        files += 1
        text = path.read_bytes().decode("utf-8", "replace")
        hits += [f"{path.relative_to(root)}" for n in needles if n in text or n in text.replace("\\n", "")]
    return Row(files, files - len(hits), len(hits), f"{len(needles)} secrets over {files} files: "
                                                    + (f"{len(hits)} found in {hits[:3]}" if hits else "none found"))


def soak(work: Path, quick: bool) -> Row:
    minutes = 5 if quick else 60
    services = Services(work / "svc")
    services.start()
    nodes = _chain_swarm(work, services, 3, _fast_config(work), HF_TOKEN=HF_SECRET)
    samples: list[list[float]] = [[] for _ in nodes]
    try:
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            time.sleep(10)
            for s, n in zip(samples, nodes):
                s.append(n.rss_mb())
    finally:
        for n in nodes:
            n.stop()
        services.stop()
    growth = max(s[-1] / max(1.0, s[max(1, len(s) // 5)]) - 1 for s in samples if len(s) > 2)
    rounds = [e for n in nodes for e in n.events if e["type"] == "round_finished"]
    slowest = max(e["seconds"] for e in rounds)
    gaps, peer, after = max((b["ts"] - a["ts"], i, a["round"]) for i, n in enumerate(nodes)
                            for a, b in _pairs([e for e in n.events if e["type"] == "round_finished"]))
    ok = growth < 0.10 and slowest < 60 and gaps < 90
    return Row(1, int(ok), 0, f"{minutes} min, {len(rounds)} rounds; RSS growth {growth:+.1%}; slowest round "
                              f"{slowest:.1f} s, longest gap {gaps:.1f} s (peer{peer} after round {after})")


def _pairs(items):
    return list(zip(items, items[1:])) or [({"ts": 0, "round": -1}, {"ts": 0})]


SCENARIOS = {
    "kill -9 node": node_kill, "kill -9 services": services_kill, "kill -9 anvil": anvil_kill,
    "kill -9 app": app_kill, "chain + login outage": outage, "hostile DHT records": hostile,
    "judge exploits": judge_exploits, "API fuzz": api_fuzz, **HOSTING, "soak (3 peers)": soak,
    "secrets in logs": secrets,  # last: it reads what the others left
}
