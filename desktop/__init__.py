"""RL Swarm Desktop: a peer-to-peer GRPO node, its local swarm and its desktop app.

Dependencies point one way (cli -> everything; gui -> events, config, identity, machine, utils;
node -> codezero, swarm, chain; services -> chain; everything -> utils):

    cli/         the one `rl-swarm` command: node, swarm, services, host, join, health, self-test, gui
    dashboard/   the web page of a headless node or local swarm (token-protected, 127.0.0.1)
    gui/         the desktop app (never imports torch, transformers or hivemind)
    node/        one peer that trains: models, GRPO, off-policy handling, the round, skill, checkpoints
    codezero/    the game: problems and their references, the sandbox and judge, rewards, proposer
    swarm/       the hivemind DHT: signed records, the roster, the rollout exchange, the clock
    chain/       the coordinator contract: client, submission queue, profiles, anvil, deploy
    services/    `rl-swarm services` / `host`: login server, accounts, round keeper, the hosting
                 proxy, join desk and invites
    local/       `rl-swarm swarm`: the processes of a swarm on this machine
    identity/    swarm.pem, its peer id and name, backups
    events/      the event protocol (JSON lines) and its readings: text, status, the swarm view
    machine/     this computer: probe, idle time, the user's pause, when the node may work
    utils/       the ground floor: paths, files and locks, logs, the frozen bundle, processes, updates
    config.py    the node's settings (pydantic) over resources/config/default.yaml
"""

__version__ = "0.1.0"

from desktop.utils import recursion_cap as _recursion_cap  # noqa: E402  (before anything can import web3)

_recursion_cap.install()
