"""RL Swarm Desktop: a peer-to-peer GRPO node, its local swarm and its desktop app.

    node/        one peer that trains: models, GRPO, the round (runner.py), SAPO choice, checkpoints
    codezero/    the game: problems and their references, the sandbox and judge, rewards, proposer
    swarm/       the hivemind DHT: signed records, the roster, the rollout exchange, the clock
    chain/       the coordinator contract: client, submission queue, profiles, anvil, deploy
    services/    `rl-swarm services`: the local login server, accounts, round keeper (stack.py)
    local/       `rl-swarm swarm`: the processes of a swarm on this machine
    identity/    swarm.pem, its peer id and name, backups
    gui/         the desktop app (never imports torch, transformers or hivemind)
    cli.py       the one `rl-swarm` command
    events.py    the event protocol (JSON lines) between a node and whoever watches it;
                 event_text.py an event as a line of text, node_status.py events folded into state
    config.py    the node's settings (pydantic) over resources/config/default.yaml
    paths.py     where things live on disk; logs.py the log files (secrets redacted)
    probe.py     what this machine has and which model pool it joins
    fsutil.py    atomic, private file writes, process locks; proc_stop.py SIGTERM -> grace -> SIGKILL
    parent_watch.py  children stop when the app dies
    frozen.py    the installed bundle: one executable as app, node and interpreter; runtime.py native or WSL children
    selftest.py  `rl-swarm self-test`; updates.py the release feed (daily, sha256-checked, never auto-installed)
    resources.py when the node may work (one pure decide()); idle.py idle time and battery per OS;
                 pause_control.py the user's pause (control.json)
    invites.py   invite codes and the host's book; joining.py `rl-swarm join`; cli_sharing.py pause/host/join
    recursion_cap.py  keeps py_ecc's recursion limit from turning a RecursionError into a segfault
"""

__version__ = "0.1.0"

from desktop import recursion_cap as _recursion_cap  # noqa: E402  (before anything can import web3)

_recursion_cap.install()
