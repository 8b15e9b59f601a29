"""The memory guard's estimate beside the measured peak RSS of real nodes, and RSS over a long run.

    python benchmarks/memory_guard.py [--sizes tiny tiny-m] [--rounds 100]

For each model a real `rl-swarm node` runs a few rounds; its RSS is polled every 20 ms. The table
shows the estimate the node logged (memory_estimate_mb of node_started) beside the peak; the goal
is estimate >= peak (never let a node in that will be killed) and not far above it. `--rounds N`
then runs one tiny node N rounds and prints its RSS at round 5 beside the largest after it (goal:
within 10 %). A real model's shape is measured by benchmarks/gpu_check.py (a node with random
weights never trains: its rewards have no spread, so its peak would leave out the training step).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procs import CLI, env  # noqa: E402


def run_node(args: list[str], config: str) -> dict:
    """Peak RSS, the estimate, and RSS at each finished round of one node run."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.yaml"
        cfg.write_text(config)
        proc = subprocess.Popen(CLI + ["node", "--json-events", "--data-dir", str(Path(tmp) / "d"), "--config",
                                       str(cfg), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env(), cwd=ROOT)
        watched, out = psutil.Process(proc.pid), {"peak": 0.0, "estimate": None, "rounds": [], "rss": 0.0}

        def read() -> None:
            for line in proc.stdout:
                event = json.loads(line)
                if event["type"] == "node_started":
                    out["estimate"] = event.get("memory_estimate_mb")
                elif event["type"] == "round_finished":
                    out["rounds"].append(out["rss"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while proc.poll() is None:
            try:
                out["rss"] = watched.memory_info().rss / 2**20
                out["peak"] = max(out["peak"], out["rss"])
            except psutil.Error:
                pass
            time.sleep(0.02)
        reader.join(10)
        out["code"] = proc.returncode
        out["stderr"] = proc.stderr.read()[-500:]
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="*", default=["tiny", "tiny-m"])
    parser.add_argument("--rounds", type=int, default=0, help="a long tiny run: RSS at round 5 against later")
    args = parser.parse_args(argv)
    fast = "training:\n  max_new_tokens: 48\n  num_generations: 4\n"
    print(f"\n{'model':<22} {'peak MB':>8} {'estimate MB':>12} {'estimate / peak':>16}")
    runs = [(f"tiny:{s}", ["--pool", "tiny", "--rounds", "3"], fast + f"model:\n  tiny_size: {s}\n") for s in args.sizes]
    for name, node_args, cfg in runs:
        r = run_node(node_args, cfg)
        if r["code"] != 0 or r["estimate"] is None:
            print(f"{name:<22} failed: {r['stderr'].strip()[-200:]}")
            continue
        print(f"{name:<22} {r['peak']:>8.0f} {r['estimate']:>12.0f} {r['estimate'] / r['peak']:>15.2f}x")
    if args.rounds:
        r = run_node(["--pool", "tiny", "--rounds", str(args.rounds)], fast)
        rss = r["rounds"]
        if len(rss) < 6:
            print(f"\nlong run failed after {len(rss)} rounds: {r['stderr'][-200:]}")
            return 1
        later = max(rss[5:]) if len(rss) > 5 else rss[-1]
        print(f"\n{args.rounds} tiny rounds: RSS at round 5 {rss[4]:.0f} MB, largest after {later:.0f} MB "
              f"({later / rss[4] - 1:+.1%}; goal within 10 %), peak {r['peak']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
