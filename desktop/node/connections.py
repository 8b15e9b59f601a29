"""Connect a node to the world: the coordinator chain (if the profile has one) and the DHT swarm.

Order matters: the chain gives bootnodes to the DHT, and the DHT's address may go back on chain.
What a node holds afterwards is one ``Connections``: its chain link (chain.link.ChainLink), the
swarm's exchange, where its rounds come from, and the proposer channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from desktop.chain.link import ChainLink
from desktop.node.comms import Communication
from desktop.node.errors import NodeError
from desktop.node.rounds import RoundSource, SyncedRoundSource
from desktop.swarm.bootnodes import answering_bootnodes
from desktop.swarm.clock import PeerRoundClock
from desktop.swarm.directory import Directory
from desktop.swarm.problems_exchange import SolverChannel

if TYPE_CHECKING:  # hivemind: imported by start_dht when a node really joins a swarm
    from desktop.swarm.dht import SwarmDHT

log = logging.getLogger(__name__)


@dataclass
class Connections:
    comms: Communication | None = None      # the DHT exchange, or None (a single peer)
    round_source: RoundSource | None = None  # SyncedRoundSource over the chain's clock or the peers'
    proposals: SolverChannel | None = None  # proposer problems in, reward feedback out
    chain: ChainLink | None = None
    dht: "SwarmDHT | None" = None

    def close(self) -> None:
        if self.chain is not None:
            self.chain.close()
        if self.comms is not None:
            self.comms.close()  # shuts the DHT down too
        elif self.dht is not None:
            self.dht.shutdown()


def route_hivemind_logs() -> None:
    """hivemind prints INFO lines on stderr by default; send them to our log file instead."""
    from hivemind.utils.logging import use_hivemind_log_handler  # hivemind: only a node that swarms

    use_hivemind_log_handler("nowhere")


def start_dht(config, identity, sink, bootnodes=()):
    """The node's DHT. ``config.swarm.initial_peers`` are the user's: if none answers, that is an
    error. ``bootnodes`` (from the chain) are the swarm's: those that answer are used, and when
    none does this peer starts the swarm itself and the others can join it."""
    from desktop.swarm.dht import SwarmDHT, SwarmError  # hivemind: only a node that swarms

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
    conns.chain = ChainLink.open(config, paths.data, paths.chain, identity.peer_id, sink)
    sw = config.swarm
    backoff = (sw.backoff_start, sw.backoff_max)
    if config.profile == "local":  # a local chain answers at once: poll it quickly
        backoff = (min(backoff[0], 1.0), min(backoff[1], 10.0))
    on_join = lambda now, was: sink.emit("joined_round", round=now, previous=was)  # noqa: E731
    if conns.chain is not None:
        conns.chain.register()

        def on_reachable(ok: bool) -> None:
            sink.emit("chain_status", reachable=ok, message=(
                "the chain answers: following its rounds" if ok else
                "the chain cannot be reached: training on without claiming its rounds; rewards are "
                "kept for the chain's next round"))

        conns.round_source = SyncedRoundSource(conns.chain.clock(), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join, on_reachable=on_reachable)
    if not sw.enabled:
        return conns
    from desktop.swarm.exchange import DHTCommunication  # hivemind: only a node that swarms

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
        conns.round_source = SyncedRoundSource(PeerRoundClock(directory), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join)
    conns.proposals = SolverChannel(dht, identity.peer_id, directory, round_window=sw.round_window + 1)
    return conns
