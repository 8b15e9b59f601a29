"""Does the offline default learn? A solo tiny node for R rounds over several seeds.

Each configuration runs `rl-swarm node --pool tiny` as a real subprocess (its own data dir and
identity per seed) and reads its events: the mean own reward of the first and the last quarter
of the rounds (training reward: on the problems it trains on), the node's held-out skill (pass
rate of its greedy answers to problems it never trains on, the `skill` event) at the first and
the last evaluation, and the share of GRPO steps skipped for lack of reward spread. The shipped
default is measured beside rl-swarm's constants (G 2, lr 1e-6, every level, one problem a
round) in the same run.

    python benchmarks/learning.py [--rounds 200] [--seeds 3] [--jobs 2] [--only default]
                                  [--set problems.pool_size=null ...]

Goals (issues 9, 19): training reward's last quarter >= its first + 0.3 on the CodeZero scale,
skipped < 20 %, and held-out skill higher at the last evaluation than at the first, at every seed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    # rl-swarm's CodeZero constants on the offline model: what the product did before
    "rl-swarm constants": {"training": {"num_generations": 2, "learning_rate": 1e-6, "max_new_tokens": 256},
                           "problems": {"adaptive": False, "max_difficulty": 4}, "swarm": {"local_groups": 1}},
    "default": {},  # resources/config/default.yaml, with the tiny pool's own defaults
}


def run_one(name: str, overrides: dict, seed: int, rounds: int, workdir: Path) -> dict:
    data = workdir / f"{name.replace(' ', '-')}-{seed}"
    data.mkdir(parents=True)
    cfg = data / "bench.yaml"
    overrides = json.loads(json.dumps(overrides))
    overrides.setdefault("training", {})["seed"] = seed
    overrides.setdefault("evaluation", {}).setdefault("every", 20)
    overrides["evaluation"].setdefault("problems", 64)  # a finer figure than the node's default 16
    cfg.write_text(json.dumps(overrides))  # JSON is YAML
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "node", "--pool", "tiny", "--json-events",
                           "--rounds", str(rounds), "--data-dir", str(data), "--config", str(cfg)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} seed {seed} failed: {proc.stderr[-2000:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    rewards = [e["mean"] for e in events if e["type"] == "rewards"]
    steps = [e for e in events if e["type"] == "train_step"]
    q = max(1, len(rewards) // 4)
    skill = [e["pass_rate"] for e in events if e["type"] == "skill"]
    return {"first": statistics.mean(rewards[:q]), "last": statistics.mean(rewards[-q:]),
            "skill_first": skill[0] if skill else float("nan"), "skill_last": skill[-1] if skill else float("nan"),
            "skill_curve": skill,
            "skipped": sum(e["skipped"] for e in steps) / max(1, len(steps)), "seconds": seconds / max(1, len(rewards)),
            "curve": rewards}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra override for the default configuration (YAML value)")
    args = parser.parse_args()
    import yaml

    configs = {k: v for k, v in CONFIGS.items() if not args.only or k in args.only}
    if args.set and "default" in configs:
        extra = configs["default"] = json.loads(json.dumps(configs["default"]))
        for item in args.set:
            dotted, _, value = item.partition("=")
            section, key = dotted.split(".", 1)
            extra.setdefault(section, {})[key] = yaml.safe_load(value)
    jobs = [(name, cfg, seed) for name, cfg in configs.items() for seed in range(1, args.seeds + 1)]
    with tempfile.TemporaryDirectory(prefix="rlswarm-learning-") as tmp, \
            ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda j: (j, run_one(j[0], j[1], j[2], args.rounds, Path(tmp))), jobs))
    print(f"\nlearning: solo tiny node, {args.rounds} rounds, {args.seeds} seeds "
          f"(reward = mean own CodeZero reward of a quarter of the rounds)\n")
    print(f"{'configuration':22} {'seed':>4} {'first 1/4':>9} {'last 1/4':>9} {'gain':>7} {'skill first→last':>17} "
          f"{'skipped':>8} {'s/round':>8}  skill at each evaluation")
    summary = {}
    for (name, _, seed), r in results:
        print(f"{name:22} {seed:>4} {r['first']:>+9.3f} {r['last']:>+9.3f} {r['last'] - r['first']:>+7.3f} "
              f"{r['skill_first']:>8.3f}→{r['skill_last']:<8.3f} {r['skipped']:>8.0%} {r['seconds']:>8.2f}  "
              + " ".join(f"{x:.2f}" for x in r["skill_curve"]))
        summary.setdefault(name, []).append(r)
    print()
    for name, rs in summary.items():
        gain = statistics.mean(r["last"] - r["first"] for r in rs)
        skill = statistics.mean(r["skill_last"] - r["skill_first"] for r in rs)
        skipped = statistics.mean(r["skipped"] for r in rs)
        verdict = "met" if gain >= 0.3 and skipped < 0.2 else "NOT met"
        rises = "met" if all(r["skill_last"] > r["skill_first"] for r in rs) else "NOT met"
        print(f"{name:22} mean training-reward gain {gain:+.3f}, skipped {skipped:.0%} (goal gain >= +0.3, skipped < 20%: "
              f"{verdict}); held-out skill {skill:+.3f} (goal: rises at every seed: {rises})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
