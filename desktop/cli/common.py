"""What every `rl-swarm` command shares. Exit codes: 0 success, 1 runtime failure, 2 bad input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory holding this peer's identity, checkpoints, config and logs "
                             "(default: the platform's data dir)")


def fail(message: str, code: int = 2) -> int:
    """The one way a command reports bad input or a failure: one line on stderr, an exit code."""
    print(f"rl-swarm: {message}", file=sys.stderr)
    return code


def default_config(paths) -> Path | None:
    """<config dir>/config.yaml when there is something by that name: a directory there is an
    error for load_config to report, never a reason to quietly run on the defaults."""
    return paths.config_file if paths.config_file.exists() else None
