"""Which bootnodes are worth handing to the p2p daemon (it refuses to start when none of its
bootstrap peers answers): never ourselves, well formed, and accepting a TCP connection now.
Used by a node before it starts its DHT and by `rl-swarm join --check` from a joiner's machine."""

from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor

NOT_DIALABLE = "not a dialable multiaddr"  # answering_bootnodes' reason for a malformed one
_MADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d{1,5})(?:/[^/]+/[^/]*)*?/p2p/([1-9A-HJ-NP-Za-km-z]+)$")


def _endpoint(maddr: str) -> tuple[str, int, str] | None:
    """(host, tcp port, peer id) of a bootstrap multiaddr, or None when it is not one we can dial."""
    match = _MADDR.match(maddr.strip()) if isinstance(maddr, str) else None
    if match is None or not 0 < int(match.group(3)) < 65536:
        return None
    return match.group(2), int(match.group(3)), match.group(4)


def answering_bootnodes(maddrs, own_peer_id: str, timeout: float = 1.5) -> tuple[list[str], dict[str, str]]:
    """The bootnodes worth handing to the p2p daemon, which refuses to start when none of its
    bootstrap peers answers: never ourselves (a persisted chain still lists this peer's address
    of an earlier run), well formed, and accepting a TCP connection now. Returns (usable, {maddr:
    why not}) ; all are tried at once, so a dead list costs one timeout, not one per entry."""
    usable, refused, probes = [], {}, []
    for maddr in dict.fromkeys(maddrs):
        end = _endpoint(maddr)
        if end is None:
            refused[maddr] = NOT_DIALABLE
        elif end[2] == own_peer_id:
            refused[maddr] = "this peer itself"
        else:
            probes.append((maddr, end))

    def probe(item) -> tuple[str, str | None]:
        maddr, (host, port, _) = item
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return maddr, None
        except OSError as exc:
            return maddr, exc.strerror or type(exc).__name__

    if probes:
        with ThreadPoolExecutor(max_workers=min(16, len(probes))) as pool:
            for maddr, why in pool.map(probe, probes):
                (refused.__setitem__(maddr, why) if why else usable.append(maddr))
    return usable, refused
