"""The web dashboard of a headless node, or of a local swarm's peers: one token-protected page.

    view.py    PeerView: one peer folded from its events (with its history and last log lines)
    server.py  DashboardServer: the page and its API on a thread of its own; the token
    serve.py   starting it for `rl-swarm node` and `rl-swarm swarm` (said once, never fatal)
"""
