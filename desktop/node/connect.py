"""Connect a node to the world: the coordinator chain (if the profile has one) and the DHT swarm.

Order matters: the chain gives bootnodes to the DHT, and the DHT's address may go back on chain.
"""

from __future__ import annotations

import logging
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
    from desktop.chain.connect import make_client, resolve_profile, signed_in_org
    from desktop.chain.queue import SubmissionQueue
    from desktop.node.chain_link import ChainLink

    profile = resolve_profile(config, paths.data)
    if profile is None:
        log.info("no coordinator chain for profile %s: rounds are counted locally", config.profile)
        return None, None
    org_id = config.chain.org_id or signed_in_org(profile)
    if org_id is None:
        sink.emit("warning", message="not signed in on the login server: rewards are queued until you sign in")
    client = make_client(profile, org_id)
    paths.chain.mkdir(parents=True, exist_ok=True)
    link = ChainLink(client, SubmissionQueue(paths.chain / "submissions.json", client), identity.peer_id, sink,
                     submit_every=config.chain.submit_every)
    log.info("coordinator %s on %s (org %s)", profile.contract_address, profile.rpc_url, org_id)
    return client, link


def start_dht(config, identity, sink, extra_peers=()):
    from desktop.node.main import NodeError
    from desktop.swarm.dht import SwarmDHT, SwarmError

    sw = config.swarm
    route_hivemind_logs()
    peers = list(dict.fromkeys([*sw.initial_peers, *extra_peers]))
    try:
        dht = SwarmDHT(identity.path, initial_peers=peers, host=sw.host, port=sw.port,
                       startup_timeout=sw.startup_timeout)
        maddrs = dht.visible_maddrs()
    except SwarmError as exc:
        raise NodeError(str(exc)) from None
    log.info("DHT up at %s", maddrs)
    sink.emit("dht_ready", peer_id=dht.peer_id, maddrs=maddrs)
    return dht, maddrs


def connect(config, paths, identity, model_name: str, sink, stop, *, publish_bootnode: bool = False) -> Connections:
    from desktop.node.rounds import SyncedRoundSource

    conns = Connections()
    client, conns.chain = connect_chain(config, paths, identity, sink)
    sw = config.swarm
    backoff = (sw.backoff_start, sw.backoff_max)
    if config.profile == "local":  # a local chain answers at once: poll it quickly
        backoff = (min(backoff[0], 1.0), min(backoff[1], 10.0))
    on_join = lambda now, was: sink.emit("joined_round", round=now, previous=was)  # noqa: E731
    if conns.chain is not None:
        from desktop.chain.client import ChainRoundSource

        conns.chain.register()
        conns.round_source = SyncedRoundSource(ChainRoundSource(client), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join)
    if not sw.enabled:
        return conns
    from desktop.swarm.exchange import DHTCommunication
    from desktop.swarm.problems_exchange import SolverChannel

    bootnodes = conns.chain.bootnodes() if conns.chain is not None else []
    dht, maddrs = start_dht(config, identity, sink, bootnodes)
    conns.dht = dht
    if publish_bootnode and conns.chain is not None:
        conns.chain.publish_bootnode(maddrs)
    conns.comms = DHTCommunication(dht, peer_id=identity.peer_id, model_name=model_name,
                                   expected_peers=sw.expected_peers, gather_timeout=sw.gather_timeout,
                                   round_window=sw.round_window)
    if conns.round_source is None:
        from desktop.swarm.clock import PeerRoundClock

        conns.round_source = SyncedRoundSource(PeerRoundClock(dht), stop=stop.now, backoff_start=backoff[0],
                                               backoff_max=backoff[1], on_join=on_join)
    conns.proposals = SolverChannel(dht, identity.peer_id, round_window=sw.round_window + 1)
    return conns
