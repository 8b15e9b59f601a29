"""The product's own local swarm with sharing on against the same swarm with sharing off.

`rl-swarm swarm --peers 3 --rounds 30` as `make run` starts it (the tiny pool's defaults, a local
chain, the real DHT), once with sharing off (``swarm.external_groups: 0``: every peer trains on its
own groups only) and once with the defaults, at each seed; the second run takes the first run's
identities, so peer N is the same peer with the same problem stream and sampling seed in both.
Printed per seed and peer: the mean reward of the first and last ten rounds in each run, where each
ends, the held-out skill at the last evaluation, and the policy's health (the last ten rounds' mean
log-prob of its own tokens).

    python benchmarks/swarm_check.py [--seeds 3] [--rounds 30] [--peers 3]

Goal (issue 19): with sharing on every peer ends at or above where it ends with sharing off.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(data: Path, config: dict, peers: int, rounds: int) -> dict[str, list[dict]]:
    cfg = data / "check.yaml"
    data.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(config))  # JSON is YAML
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "swarm", "--peers", str(peers), "--rounds", str(rounds),
                           "--json-events", "--data-dir", str(data), "--config", str(cfg)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"rl-swarm swarm failed ({proc.returncode}): {proc.stderr[-2000:]}")
    by_peer: dict[str, list[dict]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            by_peer.setdefault(event.get("peer", "?"), []).append(event)
    return by_peer


def figures(events: list[dict]) -> dict:
    rewards = [e["mean"] for e in events if e["type"] == "rewards"]
    own = [e["own_logp"] for e in events if e["type"] == "train_step" and e.get("own_logp") is not None]
    skill = [e["pass_rate"] for e in events if e["type"] == "skill"]
    return {"first": statistics.mean(rewards[:10]), "last": statistics.mean(rewards[-10:]),
            "skill": skill[-1] if skill else float("nan"), "own_logp": statistics.mean(own[-10:]) if own else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--peers", type=int, default=3)
    args = parser.parse_args()
    rows, met = [], True
    with tempfile.TemporaryDirectory(prefix="rlswarm-check-") as tmp:
        for seed in range(1, args.seeds + 1):
            off_dir, on_dir = Path(tmp) / f"off-{seed}", Path(tmp) / f"on-{seed}"
            print(f"[check] seed {seed}: sharing off ...", file=sys.stderr, flush=True)
            off = run(off_dir, {"training": {"seed": seed}, "swarm": {"external_groups": 0}}, args.peers, args.rounds)
            for peer_dir in (off_dir / "swarm").glob("peer-*"):  # the same peers, the same streams and seeds
                shutil.copytree(peer_dir / "identity", on_dir / "swarm" / peer_dir.name / "identity")
            print(f"[check] seed {seed}: sharing on ...", file=sys.stderr, flush=True)
            on = run(on_dir, {"training": {"seed": seed}}, args.peers, args.rounds)
            for peer in sorted(set(off) & set(on)):
                if not peer.startswith("solver"):
                    continue
                a, b = figures(off[peer]), figures(on[peer])
                rows.append((seed, peer, a, b))
                met &= b["last"] >= a["last"]
    print(f"\nlocal swarm, {args.peers} peers, {args.rounds} rounds, tiny pool defaults; sharing off "
          f"(swarm.external_groups 0) against on (the defaults), same peers; reward = mean own reward of "
          f"the first / last 10 rounds; skill = held-out pass rate at the last evaluation\n")
    print(f"{'seed':>4} {'peer':10} {'off: first → last':>18} {'on: first → last':>18} {'on − off at end':>15} "
          f"{'skill off/on':>13} {'own logp off/on':>16}")
    for seed, peer, a, b in rows:
        print(f"{seed:>4} {peer:10} {a['first']:>8.3f} → {a['last']:<7.3f} {b['first']:>8.3f} → {b['last']:<7.3f} "
              f"{b['last'] - a['last']:>+15.3f} {a['skill']:>6.2f}/{b['skill']:<6.2f} {a['own_logp']:>7.2f}/{b['own_logp']:<7.2f}")
    ends = [b["last"] - a["last"] for *_, a, b in rows]
    print(f"\nmean end difference {statistics.mean(ends):+.3f} over {len(rows)} peers; every peer with sharing on "
          f"at or above its end with sharing off: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
