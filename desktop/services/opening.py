"""What hosting adds to running local services, for a swarm among friends: the filtering chain
proxy with its join desk and a bootnode on the interface the host chooses, the bootnode put on the
chain, ``<data>/host/host.json`` (the public facts `rl-swarm host invite` makes codes from), and
the preflight that says which address others will use and whether the ports answer on it.
Used by `rl-swarm host` (services.host) and by `rl-swarm services` with ``hosting.enabled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from pathlib import Path

import psutil

from desktop.chain.client import ChainError, CoordinatorClient
from desktop.identity import load_or_create_identity
from desktop.services.invites import Invite, InviteBook, InviteError
from desktop.utils.fsutil import write_private

log = logging.getLogger("desktop.services.host")

HOST_FILE = "host.json"


def host_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / "host" / HOST_FILE


def advertised_address(bind: str) -> str:
    """The address to put in invites: the bind address, or for 0.0.0.0 this machine's first
    non-loopback IPv4 address (a LAN address; behind NAT others need the router's, see preflight)."""
    if bind not in ("0.0.0.0", ""):
        return bind
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


async def publish_bootnode(info, boot: list[str]) -> str | None:
    """Put the bootnode on the coordinator (the local login server's own route, as local peers
    do), so this machine's own nodes, which read their bootnodes from the chain, meet the joiners
    there. None when it worked, else why not (the swarm runs without it: joiners have the
    address in the invite)."""
    token = Path(info.api_token_file).read_text(encoding="utf-8").strip()
    client = CoordinatorClient(info.rpc_url, info.contract, login_url=info.login_url, api_token=token, org_id=None)
    try:
        await asyncio.to_thread(client.add_bootnodes, boot)
        return None
    except ChainError as exc:
        return str(exc)


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


class HostOpening:
    """What hosting adds to running local services: the filtering proxy with its join desk and a
    bootnode on ``settings.bind``, the bootnode put on the chain, and host.json for invites.
    Used by `rl-swarm host` and, with config ``hosting.enabled``, by `rl-swarm services`."""

    def __init__(self, data_dir: Path, settings) -> None:
        self.data_dir, self.settings = Path(data_dir), settings  # settings: config.HostingConfig
        self.proxy = self.writer = self.dht = None
        self._published = False  # host.json is ours to remove only once we wrote it

    async def start(self, info, funder_key: str) -> dict:
        """Open the swarm; returns its facts (what host.json and the `hosting` event hold, plus
        whether the ports answer on the advertised address). ``funder_key`` pays the joiners' gas
        (the services' own key, private_chain). Raises OSError, SwarmError."""
        # aiohttp, eth-account and hivemind: only once this machine really hosts (the services'
        # module imports this one in every process that parses the command line)
        from desktop.services.chain_writer import ChainWriter
        from desktop.services.join_desk import JoinDesk
        from desktop.services.rpc_proxy import RpcProxy
        from desktop.swarm.dht import SwarmDHT

        s = self.settings
        identity, _ = load_or_create_identity(self.data_dir / "host" / "bootnode.pem")
        self.dht = await asyncio.to_thread(SwarmDHT, identity.path, host=s.bind, port=s.dht_port)
        public = s.advertise or advertised_address(s.bind)
        listening = self.dht.visible_maddrs()
        dht_port = next((int(m.split("/tcp/")[1].split("/")[0]) for m in listening if "/tcp/" in m), s.dht_port)
        boot = [f"/ip4/{public}/tcp/{dht_port}/p2p/{self.dht.peer_id}"]
        self.writer = ChainWriter(info.rpc_url, info.contract, funder_key=funder_key)
        desk = JoinDesk(InviteBook(self.data_dir), self.writer.ensure_funded, chain_id=info.chain_id,
                        contract=info.contract)
        self.proxy = await RpcProxy(info.rpc_url, host=s.bind, port=s.port, join=desk).start()
        url = f"http://{public}:{self.proxy.port}"
        facts = {"rpc": url, "join": url + "/join", "chain_id": info.chain_id, "contract": info.contract,
                 "boot": boot, "name": s.name}
        write_private(host_file(self.data_dir), json.dumps(facts, indent=2).encode())
        self._published = True
        not_published = await publish_bootnode(info, boot)
        if not_published:
            log.warning("bootnode not put on the chain (%s): this machine's own nodes may not meet the joiners",
                        not_published)
        return {**facts, "address": public, "dht_port": dht_port, "port": self.proxy.port,
                "rpc_answers": answers(public, self.proxy.port), "dht_answers": answers(public, dht_port)}

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
        if self.writer is not None:
            await self.writer.close()
        if self.dht is not None:
            await asyncio.to_thread(self.dht.shutdown)
        self.proxy = self.writer = self.dht = None
        if self._published:
            host_file(self.data_dir).unlink(missing_ok=True)
            self._published = False


def describe(facts: dict) -> str:
    """The preflight for a person: where others reach this swarm, whether it answers there, and
    what to do when the machines are not on one network."""
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    return (f"hosting '{facts['name']}'\n"
            f"  chain proxy + join  {facts['rpc']}   answers on {facts['address']}: {yes(facts['rpc_answers'])}\n"
            f"  bootnode            {facts['boot'][0]}   answers: {yes(facts['dht_answers'])}\n"
            f"  others reach this machine as {facts['address']}; from outside this network forward TCP ports "
            f"{facts['port']} and {facts['dht_port']} on your router to it, and invite with the router's public "
            f"address (--advertise). Checked from this machine only: a joiner's `rl-swarm join --check CODE` "
            f"checks from theirs.")
