"""The bundle's entry point (see build.spec): the app, the node and services it starts, and the
interpreter its sandbox runs candidate code with (desktop.utils.frozen)."""

import sys

from desktop.utils.frozen import is_python_invocation, run_as_python

if __name__ == "__main__":
    if is_python_invocation(sys.argv):
        sys.exit(run_as_python(sys.argv[1:]))
    from desktop.utils import absent_scipy

    absent_scipy.install()  # the bundle leaves scipy out: its importers get a placeholder
    from desktop.cli import main

    sys.exit(main())
