"""Gather latency and round time of the DHT rollout exchange for 1, 2, 4 and 8 peers on loopback.

Every peer is a real hivemind DHT (its own process and p2pd daemon) with its own swarm.pem, and
exchanges real rollouts of the tiny model through ``DHTCommunication`` (signed, validated).
Peers run on separate machines in a real swarm, so one peer's compute does not grow with the
swarm: the compute part of a round (generate + reward + train with the tiny model) is measured
once per round here, and round time = compute + the slowest peer's exchange, all in this run.

    python benchmarks/swarm_gather.py [--peers 1,2,4,8] [--rounds 3] [--tokens 256]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from desktop.codezero.generator import ProblemGenerator  # noqa: E402
from desktop.codezero.judges import ExecutionJudge  # noqa: E402
from desktop.codezero.rewards import codezero_reward  # noqa: E402
from desktop.identity import create_identity  # noqa: E402
from desktop.node.grpo import GRPOSettings, GRPOTrainer  # noqa: E402
from desktop.node.models import load_model  # noqa: E402
from desktop.node.runner import Node  # noqa: E402
from desktop.swarm.dht import SwarmDHT  # noqa: E402
from desktop.swarm.exchange import DHTCommunication  # noqa: E402


def compute_round(trainer: GRPOTrainer, problem, judge) -> tuple[list, float]:
    """One peer's own work in a round: generate, reward, train. Returns (groups, seconds)."""
    start = time.perf_counter()
    ids = [trainer.encode_prompt(Node.messages(problem))]
    groups = trainer.generate([problem.question], ids)
    rewards = [[codezero_reward(t, problem, judge, hit_token_limit=h)
                for t, h in zip(groups[0].texts, groups[0].hit_limit)]]
    trainer.step(groups, rewards)
    return groups, time.perf_counter() - start


def run_swarm(n: int, rounds: int, trainer, judge, workdir: Path) -> dict:
    """``trainer`` is a fresh copy per swarm size and every round is seeded, so each size
    computes exactly the same rounds: only the exchange differs."""
    dhts, comms = [], []
    try:
        for i in range(n):
            ident = create_identity(workdir / f"n{n}-p{i}.pem")
            peers = dhts[0].visible_maddrs() if dhts else []
            dhts.append(SwarmDHT(ident.path, initial_peers=peers, startup_timeout=60))
            comms.append(DHTCommunication(dhts[-1], peer_id=ident.peer_id, model_name="tiny:tiny",
                                          expected_peers=n - 1, gather_timeout=30, poll_interval=0.05))
        gen = ProblemGenerator(seed=7)
        compute, gather, rounds_t, store = [], [], [], []
        with ThreadPoolExecutor(max_workers=n) as pool:
            for r in range(rounds):
                problem = gen.generate(r % 5)
                torch.manual_seed(1000 + r)
                groups, seconds = compute_round(trainer, problem, judge)
                t = time.perf_counter()
                results = list(pool.map(lambda c: c.exchange(r, 0, groups), comms))
                comm = time.perf_counter() - t  # the slowest peer's publish + gather
                assert all(len({p.peer_id for p in res}) == n - 1 for res in results), "a peer missed rollouts"
                compute.append(seconds)
                store.append(max(c.last_store_seconds for c in comms))
                gather.append(comm)
                rounds_t.append(seconds + comm)
        return {"compute": statistics.median(compute), "gather": statistics.median(gather),
                "store": statistics.median(store),
                "round": statistics.median(rounds_t)}
    finally:
        for c in comms:
            c.close()
        for d in dhts:
            d.shutdown()


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
    print(f"tiny model, {args.tokens} new tokens x 2 completions; median of {args.rounds} rounds per swarm size\n")
    header = f"{'peers':>5} {'compute':>9} {'store':>8} {'exchange':>9} {'round':>8} {'comm share':>11} {'round vs 1 peer':>16}"
    print(header)
    print("-" * len(header))
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            trainer = GRPOTrainer(copy.deepcopy(model), tok, settings)
            r = run_swarm(n, args.rounds, trainer, judge, Path(tmp))
            base = base or r["round"]
            print(f"{n:>5} {r['compute']:8.2f}s {r['store']:7.3f}s {r['gather']:8.3f}s {r['round']:7.2f}s "
                  f"{100 * r['gather'] / r['round']:10.1f}% {r['round'] / base:15.2f}x", flush=True)
    print("\ngoals at 8 peers: comm share < 5 %, round time <= 1.1 x the 1-peer round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
