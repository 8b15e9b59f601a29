"""Rollout exchange over the DHT, SAPO-style: publish ours, read a bounded sample of the others'.

Each peer keeps its latest rollouts under its own key (``rollouts/<peer id>``, signed, one entry).
Every round a reader samples at most ``sample_peers`` peers from the directory and reads their
keys, accepting records within ``round_window`` rounds of its own; each (peer, round) is handed
out once. There is no round barrier: without ``expected_peers`` a reader waits at most
``gather_grace`` seconds for records of its own round and then takes what is there; with it (a
local swarm run for a set number of rounds) it waits up to ``gather_timeout`` for that many.

Nothing is taken on trust: hivemind checks the signature, ``SwarmRecordValidator`` the record's
place, ``decode_rollouts`` its content, and the publisher must be the key's peer. Refusals are
counted by reason, never raised: the record reasons of ``records.REASONS``, plus "unsigned",
"foreign" (another publisher under a peer's key), "unregistered" (not on the coordinator),
"dht_error" and "own_record" (our own rollouts could not be encoded).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any, Callable, Sequence

from desktop.swarm.types import Gathered, PeerRollouts

from .dht import SwarmDHT
from .owner import signed_record
from .directory import Directory
from .records import (MAX_MODEL_CHARS, RecordError, RolloutItem, RolloutRecord, decode_rollouts,
                      encode_rollouts, fit_items, rollouts_key)

log = logging.getLogger(__name__)


class DHTCommunication:
    """Publish own rollouts and gather a bounded sample of the other peers' recent ones."""

    shares = True

    def __init__(self, dht: SwarmDHT, *, peer_id: str, model_name: str, directory: Directory | None = None,
                 expected_peers: int | None = None, gather_timeout: float = 30.0, gather_grace: float = 1.0,
                 sample_peers: int = 8, poll_interval: float = 0.2, round_window: int = 2,
                 expiration: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 close_dht: bool = True, stop: threading.Event | None = None):
        if peer_id != dht.peer_id:
            # Our records would carry one id and be signed by another: every peer drops them.
            raise ValueError(f"peer_id {peer_id} is not the DHT's identity {dht.peer_id}")
        self.dht = dht
        self.peer_id = peer_id
        self.model_name = model_name[:MAX_MODEL_CHARS]
        self.directory = directory or Directory(dht, peer_id)
        self.expected_peers = expected_peers
        self.gather_timeout = gather_timeout
        self.gather_grace = gather_grace
        self.sample_peers = sample_peers
        self.poll_interval = poll_interval
        self.round_window = round_window
        self.expiration = expiration
        self._clock = clock
        self._close_dht = close_dht
        self._stop = stop or threading.Event()  # set: a stopping node waits for nobody
        self.last_gather_seconds = 0.0
        self.last_store_seconds = 0.0
        self.last_read = {"keys": 0, "records": 0}
        self.peers_seen: set[str] = set()
        self._handed_out: dict[str, int] = {}  # peer -> newest round already returned

    # --- the Communication protocol --------------------------------------------------
    def exchange(self, round_number: int, stage: int, own: Sequence[RolloutItem]) -> Gathered:
        problems: Counter[str] = Counter()
        self.publish(round_number, stage, own, problems)
        return self.gather(round_number, stage, problems)

    def publish(self, round_number: int, stage: int, own: Sequence[RolloutItem],
                problems: Counter | None = None) -> bool:
        problems = problems if problems is not None else Counter()
        started = self._clock()
        self.directory.announce(round_number)
        try:
            payload = encode_rollouts(self.peer_id, round_number, stage, self.model_name, fit_items(own))
        except (RecordError, TypeError, ValueError) as exc:
            log.warning("own rollouts could not be encoded: %s", exc)
            problems["own_record"] += 1
            return False
        try:
            if not self.dht.store(rollouts_key(self.peer_id), self.dht.subkey, payload, self.expiration):
                log.warning("no DHT peer accepted our rollouts for round %d", round_number)
                problems["dht_error"] += 1
                return False
            return True
        except Exception as exc:
            log.warning("publishing rollouts failed: %s", exc)
            problems["dht_error"] += 1
            return False
        finally:
            self.last_store_seconds = self._clock() - started

    def gather(self, round_number: int, stage: int, problems: Counter | None = None) -> Gathered:
        problems = problems if problems is not None else Counter()
        start = self._clock()
        wait = self.gather_timeout if self.expected_peers else self.gather_grace
        deadline = start + wait
        self.directory.refresh(timeout=max(1.0, wait))
        candidates = self.directory.sample(self.sample_peers)
        records: dict[str, RolloutRecord] = {}
        verdicts: dict[str, tuple[Any, str | None]] = {}  # peer -> (value judged, reason)
        keys = records_read = 0
        while True:
            missing = [p for p in candidates if p not in records or not self._new(p, records[p], round_number)]
            if missing:
                keys += len(missing)
                try:
                    found = self.dht.get_many([rollouts_key(p) for p in missing],
                                              timeout=max(1.0, deadline - self._clock()))
                except Exception as exc:  # network trouble: keep what we have, keep polling
                    log.debug("rollout gather failed: %s", exc)
                    problems["dht_error"] += 1
                    found = {}
                for peer in missing:
                    for subkey, value in found.get(rollouts_key(peer), {}).items():
                        records_read += 1
                        self._judge(peer, subkey, value, round_number, records, verdicts)
            if self._complete(records, candidates, round_number):
                break
            now = self._clock()
            if now >= deadline or self._stop.is_set():
                break
            if self.expected_peers and len(candidates) < self.expected_peers:
                self.directory.refresh(timeout=1.0)  # peers still starting: look for them again
                candidates = self.directory.sample(self.sample_peers)
            self._stop.wait(min(self.poll_interval, max(0.0, deadline - now)))
        self.last_gather_seconds = self._clock() - start
        self.last_read = {"keys": keys, "records": records_read}
        rejected = dict(Counter(reason for _, reason in verdicts.values() if reason) + problems
                        + Counter(self.directory.last_rejected))
        if rejected:
            log.info("round %s: refused %s", round_number, rejected)
        out = []
        for peer, record in sorted(records.items()):
            self.peers_seen.add(peer)
            self.directory.note(peer, record.round)
            if self._handed_out.get(peer, -1) >= record.round:
                continue  # already trained on (a slow peer still shows last round's rollouts)
            self._handed_out[peer] = record.round
            out += [PeerRollouts(peer_id=peer, round=record.round, ref=item.ref, batch_id=item.batch_id,
                                 completions=list(item.completions), rewards=list(item.rewards), model=record.model,
                                 stopped=list(item.stopped), tokens=item.tokens, logps=item.logps)
                    for item in record.items]
        return Gathered(out, rejected)

    def keep_alive(self, round_number: int) -> None:
        """Stay on the roster while not exchanging (a paused node): its entries expire."""
        self.directory.announce(round_number)

    def close(self) -> None:
        if self._close_dht:
            self.dht.shutdown()

    # --- steps -------------------------------------------------------------------------
    def _judge(self, peer: str, subkey: Any, value: Any, round_number: int,
               records: dict[str, RolloutRecord], verdicts: dict) -> None:
        """Decide on one entry under ``peer``'s key, once per distinct value (polls repeat them)."""
        previous = verdicts.get(peer)
        if previous is not None and (previous[0] is value or previous[0] == value):
            return

        def decode(data, publisher):
            return decode_rollouts(data, expected_round=round_number, round_window=self.round_window,
                                   expected_peer_id=publisher)

        record, reason = signed_record(subkey, value, decode, owners=(peer,))
        verdicts[peer] = (value, reason)
        if reason is not None:
            log.debug("refused record under %s: %s", peer, reason)
        elif peer not in records or records[peer].round < record.round:
            records[peer] = record

    def _new(self, peer: str, record: RolloutRecord, round_number: int) -> bool:
        """Of our round or later, and not handed out already: a peer a round ahead of us showed
        us this record last round, so only its next one counts as this round's."""
        return record.round >= round_number and record.round > self._handed_out.get(peer, -1)

    def _complete(self, records: dict[str, RolloutRecord], candidates: list[str], round_number: int) -> bool:
        current = {p for p, r in records.items() if self._new(p, r, round_number)}
        if self.expected_peers:
            return len(current) >= self.expected_peers
        return set(candidates) <= current
