"""Children of the desktop app stop when the app dies, even when it is killed outright, and take
stop commands on stdin where the app's signals cannot reach them (``follow_commands``: WSL).

The app sets ``RL_SWARM_PARENT_PID`` for the processes it supervises; they watch that process and
stop cleanly once it is gone. Opt-in on purpose: a node started from a shell (`nohup rl-swarm
node &`) must keep running after the shell exits.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

ENV = "RL_SWARM_PARENT_PID"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(on_exit: Callable[[], None], interval: float = 1.0) -> threading.Thread | None:
    """Call ``on_exit`` once the process named in $RL_SWARM_PARENT_PID has exited."""
    try:
        pid = int(os.environ.get(ENV, ""))
    except ValueError:
        return None
    if pid <= 1:
        return None
    original_parent = os.getppid()

    def loop() -> None:
        stop = threading.Event()
        # our parent changing also means it died (we were re-parented), even if the pid is reused
        while _alive(pid) and os.getppid() == original_parent:
            stop.wait(interval)
        on_exit()

    thread = threading.Thread(target=loop, name="parent-watch", daemon=True)
    thread.start()
    return thread


def follow_commands(stream, commands: dict[str, Callable[[], None]],
                    on_unknown: Callable[[str], None] | None = None) -> threading.Thread:
    """Run ``commands[line]`` for each line of ``stream`` (``stop``, ``finish-round``): how the app
    stops a child that its signals cannot reach (the node or the services inside WSL). End of
    stream is no command: an app that wants a stop says so."""

    def read() -> None:
        for raw in stream:
            command = raw.strip()[:64]
            if command in commands:
                commands[command]()
            elif command and on_unknown is not None:
                on_unknown(command)

    thread = threading.Thread(target=read, name="stop-commands", daemon=True)
    thread.start()
    return thread
