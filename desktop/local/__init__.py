"""A swarm on this machine, as processes: what `rl-swarm swarm` starts and watches.

    launcher.py          LocalSwarm: N `rl-swarm node` processes (and a proposer), their table
    services_process.py  `rl-swarm services` as a child of the launcher, with a local account per peer

The DHT library these peers use is ``desktop.swarm``; the services themselves, ``desktop.services``.
"""
