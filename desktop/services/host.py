"""`rl-swarm host`: this machine's services opened to other machines, for a swarm among friends.

The local services (anvil, coordinator, login server, round keeper) stay on 127.0.0.1; what others
reach, on the interface the host chooses, is the filtering chain proxy with its join desk
(services.rpc_proxy, services.join_desk) and a bootnode (a DHT peer that trains nothing). The
public facts go to ``<data>/host/host.json``, from which `rl-swarm host invite` makes codes.
The preflight says which address others will use and whether the ports answer on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from pathlib import Path

from desktop.fsutil import write_private
from desktop.invites import Invite, InviteBook, InviteError

log = logging.getLogger("desktop.services.host")

HOST_FILE = "host.json"


def host_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / "host" / HOST_FILE


def advertised_address(bind: str) -> str:
    """The address to put in invites: the bind address, or for 0.0.0.0 this machine's first
    non-loopback IPv4 address (a LAN address; behind NAT others need the router's, see preflight)."""
    if bind not in ("0.0.0.0", ""):
        return bind
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return "127.0.0.1"


def answers(address: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def make_invite(data_dir: str | Path, *, uses: int = 1, expires_in: float = 86400.0) -> Invite:
    """A new invite for the swarm this data dir hosts (its host.json)."""
    try:
        facts = json.loads(host_file(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InviteError(f"{data_dir} hosts no swarm yet: start `rl-swarm host` first") from None
    invite_id, secret = InviteBook(data_dir).create(expires_in=expires_in, uses=uses)
    return Invite(rpc=facts["rpc"], chain_id=int(facts["chain_id"]), contract=facts["contract"], join=facts["join"],
                  id=invite_id, secret=secret, expires=int(time.time() + expires_in), boot=tuple(facts["boot"]),
                  name=facts.get("name", "swarm"))


async def _run(data_dir: Path, *, bind: str, advertise: str | None, port: int, dht_port: int, rpc_port: int,
               login_port: int, round_period: float, name: str, uses: int, expires_in: float) -> int:
    from desktop.chain.anvil import dev_private_keys
    from desktop.identity import load_or_create_identity
    from desktop.services.chain_writer import ChainWriter
    from desktop.services.join_desk import JoinDesk
    from desktop.services.rpc_proxy import RpcProxy
    from desktop.services.stack import FUNDER, LocalServices, ServicesError
    from desktop.swarm.dht import SwarmDHT, SwarmError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = LocalServices(data_dir, rpc_port=rpc_port, login_port=login_port, round_period=round_period)
    proxy = writer = dht = None
    try:
        info = await services.start()
        identity, _ = load_or_create_identity(data_dir / "host" / "bootnode.pem")
        dht = await asyncio.to_thread(SwarmDHT, identity.path, host=bind, port=dht_port)
        public = advertise or advertised_address(bind)
        listening = dht.visible_maddrs()
        dht_port = next((int(m.split("/tcp/")[1].split("/")[0]) for m in listening if "/tcp/" in m), dht_port)
        boot = [f"/ip4/{public}/tcp/{dht_port}/p2p/{dht.peer_id}"]
        writer = ChainWriter(info.rpc_url, info.contract, funder_key=dev_private_keys(FUNDER + 1)[FUNDER])
        desk = JoinDesk(InviteBook(data_dir), writer.ensure_funded, chain_id=info.chain_id, contract=info.contract)
        proxy = await RpcProxy(info.rpc_url, host=bind, port=port, join=desk).start()
        url = f"http://{public}:{proxy.port}"
        write_private(host_file(data_dir), json.dumps({"rpc": url, "join": url + "/join", "chain_id": info.chain_id,
                                                       "contract": info.contract, "boot": boot, "name": name},
                                                      indent=2).encode())
        dht_open = answers(public, dht_port)
        invite = make_invite(data_dir, uses=uses, expires_in=expires_in)
        print(f"hosting '{name}'\n"
              f"  chain proxy + join  {url}   answers on {public}: {'yes' if answers(public, proxy.port) else 'NO'}\n"
              f"  bootnode            {boot[0]}   answers: {'yes' if dht_open else 'NO'}\n"
              f"  others reach this machine as {public}; from outside this network forward TCP ports "
              f"{proxy.port} and {dht_port} on your router to it, and invite with the router's public "
              f"address (--advertise)\n\n"
              f"invite ({uses} use(s), {expires_in / 3600:g} h):\n{invite.code()}\n\n"
              "more: rl-swarm host invite   revoke: rl-swarm host revoke ID   Ctrl-C stops the swarm", flush=True)
        await services.watch(stop)
        return 0
    except (ServicesError, SwarmError, InviteError, OSError) as exc:
        print(f"rl-swarm host: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if proxy is not None:
            await proxy.stop()
        if writer is not None:
            await writer.close()
        if dht is not None:
            await asyncio.to_thread(dht.shutdown)
        await services.stop()
        host_file(data_dir).unlink(missing_ok=True)


def run_host(data_dir: Path, **kw) -> int:
    return asyncio.run(_run(Path(data_dir), **kw))
