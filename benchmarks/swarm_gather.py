"""The rollout exchange: real DHT peers on loopback, a slow peer, and the load of large swarms.

1. Exchange time for 1, 2, 4 and 8 real hivemind peers (each its own process and p2pd daemon,
   its own swarm.pem), with the tiny model's real rollouts, signed and validated. The compute of
   a round (generate + reward + train) is measured once per round: in a real swarm every peer has
   its own machine. Round time = compute + the slowest peer's exchange.
2. Heterogeneous: one of four peers is 5x slower. With a barrier (wait for every peer, as before)
   the fast peers' rounds take the slow peer's time; with SAPO's asynchrony (a short grace, then
   what is there) they keep their own pace and still take the slow peer's rollouts when present.
3. Simulated 64 / 256 / 1,000-peer swarms: bytes and records one peer reads per round, from the
   real encoded sizes of records: every peer reading one shared round key holding every record
   (as before) vs a sample of ``sample_peers`` publishers' keys plus roster buckets (now).

    python benchmarks/swarm_gather.py [--peers 1,2,4,8] [--rounds 3] [--tokens 256]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from desktop.codezero.judges import ExecutionJudge  # noqa: E402
from desktop.codezero.problems import load_problems  # noqa: E402
from desktop.codezero.rewards import codezero_reward  # noqa: E402
from desktop.identity import create_identity  # noqa: E402
from desktop.node.grpo import GRPOSettings, GRPOTrainer  # noqa: E402
from desktop.node.models import load_model  # noqa: E402
from desktop.node.runner import Node  # noqa: E402
from desktop.swarm.dht import SwarmDHT  # noqa: E402
from desktop.swarm.directory import READ_ALL_BELOW  # noqa: E402
from desktop.swarm.exchange import DHTCommunication  # noqa: E402
from desktop.swarm.records import ROSTER_BUCKETS, encode_roster, encode_rollouts, make_item  # noqa: E402

PEER = "QmRJqhA1eRZsQM99tdaU7uSG9jsRiY1qQeRXLrM31STAZN"
SUBKEY_AND_SIGNATURE = 400 + 350  # an [owner:ssh-rsa 2048] subkey and an RSA signature, per entry


def compute_round(trainer: GRPOTrainer, problem, judge) -> tuple[list, float]:
    """One peer's own work in a round: generate, reward, train. Returns (items, seconds)."""
    start = time.perf_counter()
    ids = [trainer.encode_prompt(Node.messages(problem))]
    groups = trainer.generate([problem.question], ids)
    rewards = [codezero_reward(t, problem, judge, hit_token_limit=h) for t, h in zip(groups[0].texts, groups[0].hit_limit)]
    trainer.step(groups, [rewards])
    return [make_item(problem.ref, problem.question, groups[0].texts, rewards)], time.perf_counter() - start


def start_peers(n: int, workdir: Path, tag: str, **comm_kw) -> tuple[list, list]:
    dhts, comms = [], []
    for i in range(n):
        ident = create_identity(workdir / f"{tag}-p{i}.pem")
        peers = dhts[0].visible_maddrs() if dhts else []
        dhts.append(SwarmDHT(ident.path, initial_peers=peers, startup_timeout=60))
        comms.append(DHTCommunication(dhts[-1], peer_id=ident.peer_id, model_name="tiny:tiny", poll_interval=0.05,
                                      **comm_kw))
    return dhts, comms


def stop_peers(dhts, comms) -> None:
    for c in comms:
        c.close()
    for d in dhts:
        d.shutdown()


def scaling(n: int, rounds: int, trainer, judge, workdir: Path) -> dict:
    dhts, comms = start_peers(n, workdir, f"n{n}", expected_peers=n - 1, gather_timeout=30)
    try:
        problems = load_problems("generated", seed=7)
        compute, gather, rounds_t, store = [], [], [], []
        with ThreadPoolExecutor(max_workers=n) as pool:
            for r in range(rounds):
                torch.manual_seed(1000 + r)
                items, seconds = compute_round(trainer, problems.next(r), judge)
                t = time.perf_counter()
                results = list(pool.map(lambda c: c.exchange(r, 0, items), comms))
                comm = time.perf_counter() - t  # the slowest peer's publish + gather
                assert all(len({p.peer_id for p in res.rollouts}) == n - 1 for res in results), "a peer missed rollouts"
                compute.append(seconds)
                store.append(max(c.last_store_seconds for c in comms))
                gather.append(comm)
                rounds_t.append(seconds + comm)
        return {"compute": statistics.median(compute), "gather": statistics.median(gather),
                "store": statistics.median(store), "round": statistics.median(rounds_t)}
    finally:
        stop_peers(dhts, comms)


def heterogeneous(workdir: Path, rounds: int, work: float, barrier: bool) -> dict:
    """Four peers, each round `work` seconds of compute (the last one 5x that); fast peers' round time."""
    kw = {"expected_peers": 3, "gather_timeout": 30} if barrier else {"gather_grace": 0.3}
    dhts, comms = start_peers(4, workdir, f"het-{barrier}", **kw)
    problems = load_problems("generated", seed=9)
    times: dict[int, list[float]] = {i: [] for i in range(4)}
    got_slow: list[int] = []

    def peer(i: int) -> None:
        for r in range(rounds if i < 3 else max(1, rounds // 5)):
            t = time.perf_counter()
            time.sleep(work * (5 if i == 3 else 1))  # stands in for generate + judge + train
            problem = problems.next(100 * i + r)
            received = comms[i].exchange(r, 0, [make_item(problem.ref, problem.question, ["a", "b"], [1.0, 0.0])])
            if i < 3 and any(p.peer_id == comms[3].peer_id for p in received.rollouts):
                got_slow.append(r)
            times[i].append(time.perf_counter() - t)

    try:
        threads = [threading.Thread(target=peer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fast = [x for i in range(3) for x in times[i]]
        return {"fast_round": statistics.median(fast), "slow_round": statistics.median(times[3]),
                "slow_taken": len(got_slow)}
    finally:
        stop_peers(dhts, comms)


def simulated_load(record_bytes: int, roster_bytes: int, sizes=(64, 256, 1000), sample: int = 8) -> list[dict]:
    rows = []
    for n in sizes:
        before = {"records": n - 1, "bytes": (n - 1) * (record_bytes + SUBKEY_AND_SIGNATURE), "key": n * record_bytes}
        buckets = ROSTER_BUCKETS if n < READ_ALL_BELOW else 2
        entries = round(n * buckets / ROSTER_BUCKETS)
        now_bytes = entries * (roster_bytes + SUBKEY_AND_SIGNATURE) + sample * (record_bytes + SUBKEY_AND_SIGNATURE)
        rows.append({"peers": n, "before": before, "now": {"records": sample + entries, "bytes": now_bytes,
                                                           "key": max(record_bytes, n // ROSTER_BUCKETS * roster_bytes)}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="1,2,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tok = load_model("tiny:tiny", device="cpu", dtype="float32")
    settings = GRPOSettings(max_new_tokens=args.tokens)
    judge = ExecutionJudge()
    sizes = [int(x) for x in args.peers.split(",")]
    print(f"\n1. scaling: tiny model, {args.tokens} new tokens x 2 completions; median of {args.rounds} rounds\n")
    header = f"{'peers':>5} {'compute':>9} {'store':>8} {'exchange':>9} {'round':>8} {'comm share':>11} {'round vs 1 peer':>16}"
    print(header)
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            r = scaling(n, args.rounds, GRPOTrainer(copy.deepcopy(model), tok, settings), judge, Path(tmp))
            base = base or r["round"]
            print(f"{n:>5} {r['compute']:8.2f}s {r['store']:7.3f}s {r['gather']:8.3f}s {r['round']:7.2f}s "
                  f"{100 * r['gather'] / r['round']:10.1f}% {r['round'] / base:15.2f}x", flush=True)
        print("goals at 8 peers: comm share < 5 %, round time <= 1.1 x the 1-peer round")

        work = 0.5
        print(f"\n2. heterogeneous: 4 peers, {work:.1f} s of compute a round, one peer 5x slower\n")
        print(f"{'exchange':28} {'fast peers round':>17} {'slow peer round':>16} {'slow rollouts taken':>20}")
        rows = {b: heterogeneous(Path(tmp), 10, work, b) for b in (True, False)}
        for barrier, r in rows.items():
            name = "barrier (wait for everyone)" if barrier else "async (grace 0.3 s)"
            print(f"{name:28} {r['fast_round']:16.2f}s {r['slow_round']:15.2f}s {r['slow_taken']:>20}")
        print(f"fast peers' round, async vs barrier: {rows[False]['fast_round'] / rows[True]['fast_round']:.2f}x")

    problem = load_problems("generated", seed=1).next(0)
    record = len(encode_rollouts(PEER, 10, 0, "Qwen/Qwen2.5-Coder-0.5B-Instruct",
                                 [make_item(problem.ref, problem.question, ["x" * 600] * 2, [1.0, 0.2])]))
    roster = len(encode_roster(PEER, 10, "solver", int(time.time())))
    print(f"\n3. simulated swarms: what one peer reads per round (record {record} B, roster entry {roster} B, "
          f"+{SUBKEY_AND_SIGNATURE} B subkey and signature each)\n")
    print(f"{'peers':>6} {'records before':>15} {'KB before':>10} {'records now':>12} {'KB now':>8} {'ratio':>7} "
          f"{'largest key before':>19} {'now':>9}")
    for row in simulated_load(record, roster):
        b, n = row["before"], row["now"]
        print(f"{row['peers']:>6} {b['records']:>15} {b['bytes'] / 1024:>10.0f} {n['records']:>12} "
              f"{n['bytes'] / 1024:>8.0f} {n['bytes'] / b['bytes']:>6.2f}x {b['key'] / 1024:>16.0f} KB "
              f"{n['key'] / 1024:>6.0f} KB")
    print("p2pd refuses a reply over 4 MiB: before, 17 peers at the 256 KB record limit filled one key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
