"""`rl-swarm node --role proposer`: publish sandbox-validated problems and tune their difficulty.

A proposer trains nothing. Once per swarm round it reads the solvers' reward feedback, moves the
difficulty (every 5 iterations: last 10 vs the 10 before, +-0.05), proposes a new problem and
publishes it on the DHT. It follows the solvers' round through the peers' clock.
"""

from __future__ import annotations

import logging

from desktop.chain.client import ChainRoundSource
from desktop.chain.connect import make_client, resolve_profile
from desktop.codezero.proposer import DifficultyController, Proposer
from desktop.node.connections import start_dht
from desktop.node.errors import NodeError
from desktop.swarm.clock import PeerRoundClock
from desktop.swarm.directory import Directory
from desktop.swarm.problems_exchange import ProposerChannel, ProposerLoop


log = logging.getLogger(__name__)


def run_proposer(config, paths, identity, sink, stop, *, rounds: int | None, poll: float = 1.0) -> int | None:
    """Runs until stopped (or for ``rounds`` iterations). Returns the last round served."""

    if not config.swarm.enabled:
        raise NodeError("a proposer serves a swarm: start it with --swarm or --initial-peer", 2)
    dht, _ = start_dht(config, identity, sink)
    directory = Directory(dht, identity.peer_id, role="proposer")
    try:
        profile = resolve_profile(config, paths.data)
        if profile is not None:  # the chain keeps the rounds; a proposer submits nothing

            clock = ChainRoundSource(make_client(profile, None))
        else:
            clock = PeerRoundClock(directory)
        loop = ProposerLoop(Proposer(config.training.seed, DifficultyController()),
                            ProposerChannel(dht, identity.peer_id, directory))
        sink.emit("node_started", peer_id=identity.peer_id, name=identity.name, model="generator",
                  device="cpu", round=0, role="proposer")
        served, last = 0, None
        while not stop.now.is_set() and (rounds is None or served < rounds):
            current = clock.current_round()
            round_number = 0 if current is None else current
            if round_number != last:
                summary = loop.step(round_number)
                sink.emit("proposer", **summary)
                last, served = round_number, served + 1
            stop.now.wait(poll)
        return last
    finally:
        dht.shutdown()
