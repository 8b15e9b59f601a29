"""The swarm's round when no chain keeps it: what the other peers say they are playing.

Each peer announces the round it starts under the DHT key ``clock`` (its own signed subkey). The
current round is the median of the other peers' announcements, so one peer lying about its round
cannot drag the swarm along. A peer behind (restarted, or slow) jumps to it; peers never wait for
each other here (there is no authority; the chain's round source does make early peers wait).
"""

from __future__ import annotations

import logging
import statistics
import time

import msgpack

from desktop.swarm.dht import SwarmDHT, publisher_peer_id
from desktop.swarm.records import MAX_ROUND, RecordError, _is_int, _unpack

log = logging.getLogger(__name__)

CLOCK_KEY = "clock"
VERSION = 1
_KEYS = frozenset({"v", "peer_id", "round", "at"})


def encode_announcement(peer_id: str, round_number: int) -> bytes:
    return msgpack.packb({"v": VERSION, "peer_id": peer_id, "round": int(round_number), "at": int(time.time())})


def decode_announcement(data, publisher: str | None) -> int:
    """The announced round, or RecordError when the value is malformed or not the publisher's."""
    obj = _unpack(data)
    if not isinstance(obj, dict) or set(obj) != _KEYS or obj["v"] != VERSION:
        raise RecordError("schema", "not a clock announcement")
    if not (_is_int(obj["round"]) and 0 <= obj["round"] <= MAX_ROUND and _is_int(obj["at"])):
        raise RecordError("schema", "round or time is not a valid integer")
    if publisher is None or obj["peer_id"] != publisher:
        raise RecordError("forged_publisher", "announcement not signed by the peer it names")
    return obj["round"]


class PeerRoundClock:
    wait_when_ahead = False

    def __init__(self, dht: SwarmDHT, *, max_age: float = 300.0) -> None:
        self.dht = dht
        self.max_age = max_age  # older announcements are from peers that left
        self.last_rejected: dict[str, int] = {}

    def announce(self, round_number: int) -> None:
        try:
            self.dht.store(CLOCK_KEY, self.dht.subkey, encode_announcement(self.dht.peer_id, round_number),
                           expiration_s=self.max_age)
        except Exception as exc:  # the DHT being unhappy must not stop training
            log.warning("could not announce round %d: %s", round_number, exc)

    def current_round(self) -> int | None:
        try:
            entries = self.dht.get(CLOCK_KEY)
        except Exception as exc:
            log.warning("could not read the swarm clock: %s", exc)
            return None
        rounds, rejected = [], {}
        for subkey, value in entries.items():
            publisher = publisher_peer_id(subkey)
            if publisher == self.dht.peer_id:
                continue
            try:
                rounds.append(decode_announcement(value, publisher))
            except RecordError as exc:
                rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
        self.last_rejected = rejected
        return int(statistics.median_low(rounds)) if rounds else None
