"""`rl-swarm host`: this machine's services opened to other machines, for a swarm among friends.

The local services (anvil, coordinator, login server, round keeper) stay on 127.0.0.1; what others
reach is what services.opening adds (the chain proxy with its join desk and a bootnode). This
module runs both in the foreground and prints the preflight and the first invite.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from desktop.services.invites import InviteError
from desktop.services.opening import HostOpening, describe, make_invite
from desktop.services.stack import LocalServices, ServicesError


async def _run(data_dir: Path, *, settings, rpc_port: int, login_port: int, round_period: float,
               uses: int, expires_in: float) -> int:
    from desktop.swarm.dht import SwarmError  # hivemind: only once a host really starts

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = LocalServices(data_dir, rpc_port=rpc_port, login_port=login_port, round_period=round_period)
    opening = HostOpening(data_dir, settings)
    try:
        info = await services.start()
        facts = await opening.start(info, services.keys.funder)
        invite = make_invite(data_dir, uses=uses, expires_in=expires_in)
        print(f"{describe(facts)}\n\ninvite ({uses} use(s), {expires_in / 3600:g} h):\n{invite.code()}\n\n"
              "more: rl-swarm host invite   revoke: rl-swarm host revoke ID   Ctrl-C stops the swarm", flush=True)
        await services.watch(stop)
        return 0
    except (ServicesError, SwarmError, InviteError, OSError) as exc:
        print(f"rl-swarm host: {exc}", file=sys.stderr, flush=True)
        return getattr(exc, "exit_code", 1)
    finally:
        await opening.stop()
        await services.stop()


def run_host(data_dir: Path, **kw) -> int:
    return asyncio.run(_run(Path(data_dir), **kw))
