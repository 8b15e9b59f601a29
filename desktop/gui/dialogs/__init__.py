"""Dialogs the window opens.

    first_run.py   the first-run wizard (probe, which swarm, model, token, identity and backup)
    join_swarm.py  File > Join a swarm…: `rl-swarm join` in a background child
    host_swarm.py  File > Host a swarm…: hosting settings, invites as code, link and QR
"""
