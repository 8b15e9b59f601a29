"""Who is in the swarm: the roster, sharded over ``ROSTER_BUCKETS`` keys, and the peers it names.

Each peer announces itself (role, round, time) in its own bucket every round. A reader refreshes
from the roster once a round: every bucket while it knows few peers, two random ones after that,
so its cost stays small as the swarm grows, while peers it has seen stay known until they fall
silent for ``max_age`` seconds. Only peers ``accept`` lets through are sampled (on a chain: peers
registered on the coordinator), so a stranger with a fresh key costs a reader nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from typing import Callable, Iterable

from .owner import publisher_peer_id
from .records import ROSTER_BUCKETS, RecordError, RosterEntry, bucket_of, decode_roster, encode_roster, roster_key

log = logging.getLogger(__name__)

READ_ALL_BELOW = 64   # known peers under which every roster bucket is read each refresh
MAX_KNOWN = 4096      # the directory itself stays bounded whatever strangers announce


class Directory:
    def __init__(self, dht, peer_id: str, role: str = "solver", *, max_age: float = 300.0,
                 accept: Callable[[Iterable[str]], set[str]] | None = None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time) -> None:
        self.dht = dht
        self.peer_id = peer_id
        self.role = role
        self.max_age = max_age
        self.accept = accept
        self.rng = rng or random.Random()
        self._clock = clock
        self._known: dict[str, tuple[RosterEntry, float]] = {}  # peer -> (entry, when we read it)
        self.last_rejected: dict[str, int] = {}
        self._announced: tuple[int, float] | None = None  # (round, when) of our last roster entry

    # --- writing -------------------------------------------------------------------------------
    def announce(self, round_number: int) -> bool:
        """Our roster entry; the same round again is only re-stored once a third of max_age passed."""
        now = self._clock()
        if self._announced and self._announced[0] == round_number and now - self._announced[1] < self.max_age / 3:
            return True
        try:
            payload = encode_roster(self.peer_id, round_number, self.role, int(self._clock()))
            stored = bool(self.dht.store(roster_key(bucket_of(self.peer_id)), self.dht.subkey, payload,
                                         expiration_s=self.max_age))
            if stored:
                self._announced = (round_number, now)
            return stored
        except Exception as exc:  # the DHT being unhappy must not stop training
            log.warning("could not announce round %d: %s", round_number, exc)
            return False

    # --- reading -------------------------------------------------------------------------------
    def refresh(self, timeout: float | None = None) -> None:
        """Read roster buckets and remember who is there; never raises."""
        buckets = list(range(ROSTER_BUCKETS))
        if len(self._known) >= READ_ALL_BELOW:
            buckets = self.rng.sample(buckets, 2)
        counts: Counter[str] = Counter()
        try:
            found = self.dht.get_many([roster_key(b) for b in buckets], timeout=timeout)
        except Exception as exc:
            log.debug("roster read failed: %s", exc)
            counts["dht_error"] += 1
            found = {}
        now = self._clock()
        for entries in found.values():
            for subkey, value in entries.items():
                publisher = publisher_peer_id(subkey)
                if publisher is None:
                    counts["unsigned"] += 1
                    continue
                if publisher == self.peer_id:
                    continue
                try:
                    entry = decode_roster(value, expected_peer_id=publisher)
                except RecordError as exc:
                    counts[exc.reason] += 1
                    continue
                self._known[publisher] = (entry, now)
        self._forget(now)
        self.last_rejected = dict(counts)

    def _forget(self, now: float) -> None:
        for peer in [p for p, (_, seen) in self._known.items() if now - seen > self.max_age]:
            del self._known[peer]
        if len(self._known) > MAX_KNOWN:  # keep the most recently seen
            for peer, _ in sorted(self._known.items(), key=lambda kv: kv[1][1])[:len(self._known) - MAX_KNOWN]:
                del self._known[peer]

    def entries(self, role: str | None = None) -> list[RosterEntry]:
        """Peers seen lately (never this one), optionally of one role."""
        self._forget(self._clock())
        return [entry for entry, _ in self._known.values() if role is None or entry.role == role]

    def note(self, peer_id: str, round_number: int, role: str = "solver") -> None:
        """A peer proved alive some other way (its record arrived): keep it known."""
        if peer_id != self.peer_id:
            self._known[peer_id] = (RosterEntry(peer_id, round_number, role, int(self._clock())), self._clock())

    def accepted(self, peers: Iterable[str]) -> set[str]:
        peers = set(peers)
        if self.accept is None or not peers:
            return peers
        try:
            return set(self.accept(peers)) & peers
        except Exception as exc:  # e.g. the chain is down: nobody new, rather than anybody
            log.debug("could not check peers: %s", exc)
            return set()

    def sample(self, k: int, role: str = "solver") -> list[str]:
        """Up to ``k`` accepted peers of ``role``, chosen at random (a bounded read per round)."""
        candidates = sorted(self.accepted(e.peer_id for e in self.entries(role)))
        unaccepted = len(self.entries(role)) - len(candidates)
        if unaccepted:
            self.last_rejected = dict(Counter(self.last_rejected) + Counter({"unregistered": unaccepted}))
        return candidates if len(candidates) <= k else self.rng.sample(candidates, k)
