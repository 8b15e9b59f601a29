"""`python -m desktop.cli`: the `rl-swarm` command."""

import sys

from desktop.cli import main

sys.exit(main())
