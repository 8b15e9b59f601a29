"""Does sharing help? Four tiny peers on loopback, SAPO's own/external split, same rounds and compute.

For each configuration own/external = I/J groups (8/0 is training alone, "silo"), four real
`rl-swarm node --swarm` processes (real hivemind DHT, their own identities, so their own problems
and samples) play R rounds; each round a peer generates I groups of G completions and trains on
its I groups plus J groups the others published (with reward spread, judged by itself). The
figure is the cumulative own reward (sum over rounds of the round's mean own reward, averaged over
the peers), and its ratio to 8/0, beside Gensyn's figure for 8 x Qwen2.5-0.5B (SAPO, arXiv
2509.08721: 4/4 ~ +94 % over 8/0; 2/6 unstable).

    python benchmarks/sapo.py [--rounds 40] [--generations 4] [--configs 8/0 6/2 4/4 2/6] [--pool-size N|null]
                             [--learning-rate LR]

Goal (issue 9): some sharing configuration beats 8/0. If none does, the README says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.procs import EventProcess, node_args  # noqa: E402

PAPER = {"8/0": "1.00x (silo)", "6/2": "better than silo", "4/4": "~1.94x (best)", "2/6": "unstable"}


def run_config(own: int, external: int, peers: int, rounds: int, generations: int, work: Path,
               pool_size: str | None = None, learning_rate: float | None = None) -> dict:
    cfg = work / "sapo.yaml"
    lr = f"  learning_rate: {learning_rate}\n" if learning_rate is not None else ""
    cfg.write_text(f"training:\n  num_generations: {generations}\n{lr}"
                   f"swarm:\n  local_groups: {own}\n  external_groups: {external}\n"
                   f"  expected_peers: {peers - 1}\n  gather_timeout: 60\n"
                   + (f"problems:\n  pool_size: {pool_size}\n" if pool_size is not None else ""))
    nodes, boot = [], []
    try:
        for i in range(peers):
            extra = ["--swarm", "--rounds", str(rounds)] + [x for m in boot for x in ("--initial-peer", m)]
            nodes.append(EventProcess(node_args(work / f"peer{i}", *extra, config=cfg), work / f"peer{i}.err"))
            if i == 0:
                ready = nodes[0].wait_for(lambda e: e["type"] == "dht_ready", 180)
                boot = ready["maddrs"]
        started = time.monotonic()
        for n in nodes:
            n.wait_for(lambda e: e["type"] == "node_stopped", 7200)
        seconds = time.monotonic() - started
    finally:
        for n in nodes:
            n.stop()
    cumulative, taken = [], []
    for n in nodes:
        rewards = [e["mean"] for e in n.events if e["type"] == "rewards"]
        cumulative.append(sum(rewards))
        taken.append(sum(e["groups"]["external"] for e in n.events if e["type"] == "train_step"))
    return {"cumulative": statistics.mean(cumulative), "spread": statistics.pstdev(cumulative),
            "external": statistics.mean(taken), "seconds": seconds / rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--peers", type=int, default=4)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--configs", nargs="+", default=["8/0", "6/2", "4/4", "2/6"])
    parser.add_argument("--pool-size", default=None, metavar="N|null",
                        help="problems.pool_size for every peer (default: the tiny pool's own, 16; "
                             "null: a new problem every time)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="training.learning_rate for every peer (default: the tiny pool's own, 5e-4)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="rlswarm-sapo-") as tmp:
        for spec in args.configs:
            own, external = (int(x) for x in spec.split("/"))
            work = Path(tmp) / spec.replace("/", "-")
            work.mkdir()
            print(f"[sapo] {spec} ...", file=sys.stderr, flush=True)
            results[spec] = run_config(own, external, args.peers, args.rounds, args.generations, work,
                                       args.pool_size, args.learning_rate)
    base = results.get("8/0", next(iter(results.values())))["cumulative"]
    pool = "the tiny pool's default" if args.pool_size is None else args.pool_size
    print(f"\nsapo: {args.peers} tiny peers on loopback, {args.rounds} rounds, G {args.generations}, "
          f"problems.pool_size {pool}, learning rate {args.learning_rate or 'the default'}; cumulative "
          f"reward = sum over rounds of the mean own reward, averaged over peers\n")
    print(f"{'own/external':>12} {'cumulative':>11} {'peers sd':>9} {'vs 8/0':>7} {'ext. groups':>12} "
          f"{'s/round':>8}  paper (8 x Qwen2.5-0.5B)")
    for spec, r in results.items():
        ratio = r["cumulative"] / base if base else float("nan")
        print(f"{spec:>12} {r['cumulative']:>11.2f} {r['spread']:>9.2f} {ratio:>6.2f}x {r['external']:>12.0f} "
              f"{r['seconds']:>8.1f}  {PAPER.get(spec, '')}")
    best = max((s for s in results if s != "8/0"), key=lambda s: results[s]["cumulative"], default=None)
    if best and "8/0" in results:
        beat = results[best]["cumulative"] > base
        print(f"\nbest sharing configuration {best}: {results[best]['cumulative'] / base:.2f}x 8/0 "
              f"(goal: a sharing configuration beats 8/0: {'met' if beat else 'NOT met'})")
    print(json.dumps({k: round(v["cumulative"], 3) for k, v in results.items()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
