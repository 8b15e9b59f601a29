"""When to stop: asked from signal handlers, the app's stdin or other threads. Light on purpose (no
torch): the node's entry point installs it before loading anything."""

from __future__ import annotations

import threading

from desktop.utils.parent_watch import follow_commands


class StopControl:
    """Asked from signal handlers or other threads: stop now, or after the current round."""

    def __init__(self) -> None:
        self.now = threading.Event()
        self.after_round = threading.Event()
        self.reason = "finished"

    def stop(self, reason: str = "signal") -> None:
        self.reason = reason
        self.now.set()

    def finish_round(self, reason: str = "finish-round") -> None:
        self.reason = reason
        self.after_round.set()

    def follow(self, stream, on_unknown=None) -> threading.Thread:
        """Take commands from ``stream``, one per line: ``stop`` and ``finish-round``. For a node
        whose parent cannot signal it (the app on Windows, the node inside WSL): the app writes to
        the node's stdin instead. End of stream is no command: an app that wants a stop says so."""
        return follow_commands(stream, {"stop": lambda: self.stop(reason="stop-command"),
                                        "finish-round": self.finish_round}, on_unknown)
