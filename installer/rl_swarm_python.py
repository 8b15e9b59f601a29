"""The bundle's second executable, `rl-swarm-python` (see build.spec): only the interpreter the
sandbox runs judged programs with (``-I -S -B -u -c CODE``). It has its own small archive (the
standard library the harness and candidates use) and none of the app's runtime hooks, so each of
the two interpreters a judged program needs starts in a fraction of `rl-swarm-desktop`'s time."""

import sys

from desktop.utils.frozen import run_as_python

if __name__ == "__main__":
    sys.exit(run_as_python(sys.argv[1:]))
