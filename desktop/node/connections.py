"""Connect a node to the world: the coordinator chain (if the profile has one) and the DHT swarm.

Order matters: the chain gives bootnodes to the DHT, and the DHT's address may go back on chain.
"""

from __future__ import annotations

import logging
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Connections:
    comms: object | None = None         # DHTCommunication, or None (single peer)
    round_source: object | None = None  # SyncedRoundSource over the chain or the peers' clock
    proposals: object | None = None     # SolverChannel for proposer problems
    chain: object | None = None         # ChainLink
    dht: object | None = None

    def close(self) -> None:
        if self.chain is not None:
            self.chain.close()
        if self.comms is not None:
            self.comms.close()  # shuts the DHT down too
        elif self.dht is not None:
            self.dht.shutdown()


def route_hivemind_logs() -> None:
    """hivemind prints INFO lines on stderr by default; send them to our log file instead."""
    from hivemind.utils.logging import use_hivemind_log_handler

    use_hivemind_log_handler("nowhere")


def connect_chain(config, paths, identity, sink):
    """(client, ChainLink) for the profile's coordinator, or (None, None) when there is none."""
    from desktop.chain.connect import make_client, resolve_profile, services_path, signed_in_org
    from desktop.chain.queue import SubmissionQueue
    from desktop.node.chain_link import ChainLink

    profile = resolve_profile(config, paths.data)
    if profile is None:
        log.info("no coordinator chain for profile %s: rounds are counted locally", config.profile)
        return None, None
    org_id = config.chain.org_id or signed_in_org(profile)
    if org_id is None:
        sink.emit("warning", message="not signed in on the login server: rewards are queued until you sign in")
    following = services_path(config, paths.data) if config.profile in ("local", "swarm") else None
    client = make_client(profile, org_id, following)
    paths.chain.mkdir(parents=True, exist_ok=True)
    link = ChainLink(client, SubmissionQueue(paths.chain / "submissions.json", client), identity.peer_id, sink,
                     submit_every=config.chain.submit_every)
    log.info("coordinator %s on %s (org %s)", profile.contract_address, profile.rpc_url, org_id)
    return client, link


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


def start_dht(config, identity, sink, bootnodes=()):
    """The node's DHT. ``config.swarm.initial_peers`` are the user's: if none answers, that is an
    error. ``bootnodes`` (from the chain) are the swarm's: those that answer are used, and when
    none does this peer starts the swarm itself and the others can join it."""
    from desktop.node.errors import NodeError
    from desktop.swarm.dht import SwarmDHT, SwarmError

    sw = config.swarm
    route_hivemind_logs()
    chosen, refused = answering_bootnodes(bootnodes, identity.peer_id)
    for maddr, why in refused.items():
        log.info("bootnode %s skipped: %s", maddr, why)
    explicit = [p for p in dict.fromkeys(sw.initial_peers) if p not in chosen]
    attempts = [explicit + chosen] + ([explicit] if chosen else [])
    for number, peers in enumerate(attempts):
        try:
            dht = SwarmDHT(identity.path, initial_peers=peers, host=sw.host, port=sw.port,
                           startup_timeout=sw.startup_timeout)
            maddrs = dht.visible_maddrs()
            break
        except SwarmError as exc:
            if number + 1 < len(attempts) and exc.bootstrap:  # the answering bootnodes still refused us
                log.warning("none of the swarm's bootnodes let us join (%s); trying without them", exc)
                continue
            raise NodeError(str(exc)) from None
    if bootnodes and not (set(peers) & set(chosen)) and not explicit:
        sink.emit("warning", message="none of the swarm's bootnodes answered: this peer starts the swarm "
                                     "and the others can join it")
    log.info("DHT up at %s (bootstrapped from %d peers)", maddrs, len(peers))
    sink.emit("dht_ready", peer_id=dht.peer_id, maddrs=maddrs)
    return dht, maddrs


def connect(config, paths, identity, model_name: str, sink, stop, *, publish_bootnode: bool = False) -> Connections:
    """The node's chain link and swarm; whatever was started is closed again if a later part fails
    (a DHT process left running would keep the node's process from ever exiting)."""
    conns = Connections()
    try:
        return _connect(conns, config, paths, identity, model_name, sink, stop, publish_bootnode)
    except BaseException:
        conns.close()
        raise


def _connect(conns: Connections, config, paths, identity, model_name: str, sink, stop,
             publish_bootnode: bool) -> Connections:
    from desktop.node.rounds import SyncedRoundSource

    client, conns.chain = connect_chain(config, paths, identity, sink)
    sw = config.swarm
    backoff = (sw.backoff_start, sw.backoff_max)
    if config.profile == "local":  # a local chain answers at once: poll it quickly
        backoff = (min(backoff[0], 1.0), min(backoff[1], 10.0))
    on_join = lambda now, was: sink.emit("joined_round", round=now, previous=was)  # noqa: E731
    if conns.chain is not None:
        from desktop.chain.client import ChainRoundSource

        conns.chain.register()

        def on_reachable(ok: bool) -> None:
            sink.emit("chain_status", reachable=ok, message=(
                "the chain answers: following its rounds" if ok else
                "the chain cannot be reached: training on without claiming its rounds; rewards are "
                "kept for the chain's next round"))

        conns.round_source = SyncedRoundSource(ChainRoundSource(client), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join, on_reachable=on_reachable)
    if not sw.enabled:
        return conns
    from desktop.swarm.directory import Directory
    from desktop.swarm.exchange import DHTCommunication
    from desktop.swarm.problems_exchange import SolverChannel

    bootnodes = conns.chain.bootnodes() if conns.chain is not None else []
    conns.dht, maddrs = start_dht(config, identity, sink, bootnodes)
    dht = conns.dht
    if publish_bootnode and conns.chain is not None:
        conns.chain.publish_bootnode(maddrs)
    # on a chain, only peers registered on the coordinator are read: a fresh key costs nothing
    directory = Directory(dht, identity.peer_id, accept=conns.chain.registered if conns.chain is not None else None)
    conns.comms = DHTCommunication(dht, peer_id=identity.peer_id, model_name=model_name, directory=directory,
                                   expected_peers=sw.expected_peers, gather_timeout=sw.gather_timeout,
                                   gather_grace=sw.gather_grace, sample_peers=sw.sample_peers,
                                   round_window=sw.round_window, stop=stop.now)
    if conns.round_source is None:
        from desktop.swarm.clock import PeerRoundClock

        conns.round_source = SyncedRoundSource(PeerRoundClock(directory), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join)
    conns.proposals = SolverChannel(dht, identity.peer_id, directory, round_window=sw.round_window + 1)
    return conns
