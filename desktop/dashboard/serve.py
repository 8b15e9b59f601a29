"""Starting the dashboard for `rl-swarm node` and `rl-swarm swarm`: never fatal (a port in use is
a warning and the node goes on), said once on stderr (stdout carries events)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable

from desktop.dashboard.view import PeerView

log = logging.getLogger("desktop.dashboard")
CONTAINER_ENV = "RL_SWARM_CONTAINER"  # set by the Dockerfile


def open_dashboard(settings, data_dir: Path, views: dict[str, PeerView], control: Callable[[str, str], str],
                   warn: Callable[[str], None]):
    """``settings``: config.DashboardConfig. The DashboardServer, or None when off or it cannot listen."""
    if not settings.enabled:
        return None
    # aiohttp: only where a dashboard really opens (the command line imports this module everywhere)
    from desktop.dashboard.server import LOOPBACK, DashboardServer, load_or_create_token

    local = settings.bind in LOOPBACK
    listen = settings.bind
    if local and os.environ.get(CONTAINER_ENV):
        # a container's 127.0.0.1 is its own: listen on its network, which only the host's published
        # 127.0.0.1 port reaches (docker-compose.yaml), and answer only loopback names as before
        listen = "0.0.0.0"
    elif not local:
        warn(f"the dashboard listens on {settings.bind}: other machines can reach it (with its token); an SSH "
             "tunnel to 127.0.0.1 is safer")
    server = DashboardServer(views, control, token=load_or_create_token(data_dir), bind=listen,
                             port=settings.port, local_names=local)
    try:
        server.start()
    except OSError as exc:
        warn(f"{exc}: running without a dashboard (set dashboard.port, or dashboard.enabled: false)")
        return None
    if os.environ.get(CONTAINER_ENV):
        # a container's stderr is its log (docker logs), and the token is a secret: say how to get it
        print(f"dashboard: port {server.port} of this container; its address with the token: "
              "docker compose exec <service> rl-swarm health --url (or docker exec <container> …)",
              file=sys.stderr, flush=True)
    else:
        print(server.how_to_open(), file=sys.stderr, flush=True)
    # said on stderr already; at INFO it would also be the first event a node writes, before its own
    log.debug("dashboard on %s:%d", settings.bind, server.port)
    return server
