"""The chaos suite: kill things, cut things off, attack things, and count what survives.

Every scenario runs real processes (nodes, services, anvil, the app, hivemind peers) and prints one
row: scenario | runs | survived | lost | figure. `make chaos` runs the full version (x50 kills,
a 5-minute outage, 10,000 hostile records, a 1-hour soak); `--quick` a short one of each (CI).

    python benchmarks/chaos.py [--quick] [--only NAME ...] [--keep DIR]

Exit code 0 only if every scenario survived every run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Row:
    runs: int
    survived: int
    lost: int
    figure: str

    @property
    def ok(self) -> bool:
        return self.survived == self.runs and self.lost == 0


def main(argv: list[str] | None = None) -> int:
    import chaos_scenarios as sc

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short version of every scenario (CI)")
    parser.add_argument("--only", nargs="+", choices=sorted(sc.SCENARIOS))
    parser.add_argument("--keep", type=Path, help="keep the scenarios' data here (default: a temp dir)")
    args = parser.parse_args(argv)
    names = args.only or list(sc.SCENARIOS)
    rows: dict[str, Row] = {}
    with tempfile.TemporaryDirectory(prefix="rlswarm-chaos-") as tmp:
        work = args.keep or Path(tmp)
        for name in names:
            started = time.monotonic()
            print(f"[chaos] {name} ...", file=sys.stderr, flush=True)
            try:
                rows[name] = sc.SCENARIOS[name](work / name, args.quick)
            except Exception as exc:  # a scenario that cannot even run has not survived
                rows[name] = Row(1, 0, 0, f"scenario failed: {type(exc).__name__}: {str(exc)[:120]}")
            print(f"[chaos] {name}: {rows[name]} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nchaos suite ({'quick' if args.quick else 'full'})\n")
    print(f"{'scenario':30} {'runs':>5} {'survived':>9} {'lost':>5}  figure")
    for name, row in rows.items():
        print(f"{name:30} {row.runs:>5} {row.survived:>9} {row.lost:>5}  {row.figure}")
    failed = [n for n, r in rows.items() if not r.ok]
    print("\nall survived" if not failed else f"\nNOT survived: {', '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
