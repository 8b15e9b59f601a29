"""The web dashboard of a headless node, or of a local swarm's peers: one token-protected page.

    view.py    PeerView: one peer folded from its events (with its history and last log lines)
    server.py  DashboardServer: the page and its API on a thread of its own; the token
    token.py   where the token lives and how it is read (light: `rl-swarm health` reads it too)
    serve.py   starting it for `rl-swarm node` and `rl-swarm swarm` (said once, never fatal)
"""
