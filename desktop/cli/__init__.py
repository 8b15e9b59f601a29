"""The one `rl-swarm` command.

    main.py      the parser and the dispatch: node, swarm, services, chain, identity, probe, gui
    common.py    what every command shares: --data-dir, the one way to report bad input, the config file
    sharing.py   pause / resume (this computer) and host / join / swarm-status (a swarm between machines)
    join.py      `rl-swarm join CODE`: check the invite and the host, make our account, get funded
    selftest.py  `rl-swarm self-test`: sandbox, window, services, a tiny round, in an installation
    health.py    `rl-swarm health`: is the node working, judged from its dashboard (a container's check)

Subcommands import their heavy parts (torch, Qt, hivemind, web3) inside the command, so `--help`,
`identity` and the app's first paint never load them.
"""

from desktop.cli.main import build_parser, main  # noqa: F401
