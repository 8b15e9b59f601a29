"""Starting the dashboard for `rl-swarm node` and `rl-swarm swarm`: never fatal (a port in use is
a warning and the node goes on), said once on stderr (stdout carries events)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable

from desktop.dashboard.view import PeerView

log = logging.getLogger("desktop.dashboard")


def open_dashboard(settings, data_dir: Path, views: dict[str, PeerView], control: Callable[[str, str], str],
                   warn: Callable[[str], None]):
    """``settings``: config.DashboardConfig. The DashboardServer, or None when off or it cannot listen."""
    if not settings.enabled:
        return None
    # aiohttp: only where a dashboard really opens (the command line imports this module everywhere)
    from desktop.dashboard.server import DashboardServer, load_or_create_token

    if settings.bind not in ("127.0.0.1", "localhost", "::1"):
        warn(f"the dashboard listens on {settings.bind}: other machines can reach it (with its token); an SSH "
             "tunnel to 127.0.0.1 is safer")
    server = DashboardServer(views, control, token=load_or_create_token(data_dir), bind=settings.bind,
                             port=settings.port)
    try:
        server.start()
    except OSError as exc:
        warn(f"{exc}: running without a dashboard (set dashboard.port, or dashboard.enabled: false)")
        return None
    print(server.how_to_open(), file=sys.stderr, flush=True)
    log.info("dashboard on %s:%d", settings.bind, server.port)
    return server
