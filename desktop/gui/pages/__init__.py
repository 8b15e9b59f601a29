"""The main window's pages.

    dashboard.py  the peer, its state, cards (round, model, peers, rewards, skill), charts, recent rounds
    swarm.py      every peer heard on the DHT or registered on the chain, the leaderboard
    logs.py       the node's and the services' log records, filtered and followed live
"""
