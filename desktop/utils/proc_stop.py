"""Stopping child processes the same way everywhere: SIGTERM, a grace period, then SIGKILL.

Standard library only (the GUI, the launcher, the services and anvil's wrapper all use it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence


def terminate_then_kill(procs: Sequence[subprocess.Popen], grace: float, *, group: bool = True) -> None:
    """SIGTERM every live process, wait up to ``grace`` seconds in all, then SIGKILL what is left.

    With ``group`` each process leads its own process group (``start_new_session``), and the whole
    group is killed at the end, so its own children (a DHT daemon, anvil) never outlive it."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if group and hasattr(os, "killpg"):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif p.poll() is None:
            p.kill()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
