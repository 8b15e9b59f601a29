"""The app's child processes (never torch in the app itself: the node and the services run here).

    supervisor.py  ProcessSupervisor: one QProcess, its lines and events, restarts, stop and kill
    children.py    NodeSupervisor (status from events), ServicesSupervisor (where the services listen)
    outcome.py     ProcState, RestartPolicy, Outcome: what a run is and how it ended (no Qt)
    background.py  BackgroundCommand: a short `rl-swarm` command whose output a dialog or page reads
    remote.py      RemoteNode: a node on another machine, attached through its web dashboard
"""
