"""Rollout exchange over the DHT: the swarm implementation of ``Communication``.

Each round/stage every peer stores its record under ``rollouts/<round>/<stage>`` in its own
signed ``[owner:…]`` subkey, then polls that key until the peers it expects are in or the
deadline passes. Unlike GenRL's store-sleep-read, nothing is taken on trust: hivemind checks
the signature, ``decode_rollouts`` the content, and the subkey's key must be the key of the
peer id the record names. Refusals are counted by reason, never raised: the record reasons
of ``records.REASONS``, plus "unsigned" (entry not under an ``[owner:…]`` subkey), "dht_error"
(a store or read failed) and "own_record" (our own rollouts could not be encoded).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Callable, Sequence

from desktop.node.rounds import PeerRollouts

from .dht import SwarmDHT, publisher_peer_id
from .records import (MAX_MODEL_CHARS, RecordError, RolloutRecord, decode_rollouts,
                      encode_rollouts, fit_items, make_item)

log = logging.getLogger(__name__)

# Rounds of publisher history used to guess who to wait for when expected_peers is None.
_HISTORY_ROUNDS = 2


def rollout_key(round_number: int, stage: int) -> str:
    return f"rollouts/{round_number}/{stage}"


class DHTCommunication:
    """Publish own rollouts and gather the other peers' for the same round and stage."""

    def __init__(self, dht: SwarmDHT, *, peer_id: str, model_name: str,
                 expected_peers: int | None = None, gather_timeout: float = 30.0,
                 poll_interval: float = 0.2, round_window: int = 2, expiration: float = 600.0,
                 clock: Callable[[], float] = time.monotonic, close_dht: bool = True):
        if peer_id != dht.peer_id:
            # Our records would carry one id and be signed by another: every peer drops them.
            raise ValueError(f"peer_id {peer_id} is not the DHT's identity {dht.peer_id}")
        self.dht = dht
        self.peer_id = peer_id
        self.model_name = model_name[:MAX_MODEL_CHARS]
        self.expected_peers = expected_peers
        self.gather_timeout = gather_timeout
        self.poll_interval = poll_interval
        self.round_window = round_window
        self.expiration = expiration
        self._clock = clock
        self._close_dht = close_dht
        self.last_rejected: dict[str, int] = {}
        self.last_gather_seconds = 0.0
        self.last_store_seconds = 0.0
        self.peers_seen: set[str] = set()
        self._publishers: dict[int, set[str]] = {}  # round -> peers with an accepted record

    # --- the Communication protocol --------------------------------------------------

    def exchange(self, round_number: int, stage: int, own: Sequence[Any],
                 rewards: Sequence[Sequence[float]] | None = None) -> list[PeerRollouts]:
        """Publish ``own`` groups (``.prompt``, ``.texts``) and return the peers' rollouts.

        ``rewards`` (one list per group) is optional: rewards are usually computed after the
        exchange, so records normally carry none.
        """
        problems: Counter[str] = Counter()
        key = rollout_key(round_number, stage)
        self._publish(key, round_number, stage, own, rewards, problems)

        start = self._clock()
        deadline = start + self.gather_timeout
        waiting_for = self._peers_to_wait_for(round_number)
        # subkey -> (value judged, publisher or None, record or None, reason or None)
        verdicts: dict[Any, tuple[Any, str | None, RolloutRecord | None, str | None]] = {}
        while True:
            remaining = deadline - self._clock()
            try:
                entries = self.dht.get(key, timeout=max(remaining, 1.0))
            except Exception as exc:  # network trouble: keep what we have, keep polling
                log.debug("rollout gather failed: %s", exc)
                problems["dht_error"] += 1
                entries = {}
            for subkey, value in entries.items():
                self._judge(subkey, value, round_number, stage, verdicts)
            if self._complete(verdicts, waiting_for):
                break
            now = self._clock()
            if now >= deadline:
                break
            time.sleep(min(self.poll_interval, deadline - now))
        self.last_gather_seconds = self._clock() - start

        accepted = {pub: rec for _, pub, rec, _ in verdicts.values() if rec is not None}
        rejected = Counter(reason for _, _, _, reason in verdicts.values() if reason)
        self.last_rejected = dict(rejected + problems)
        self.peers_seen |= set(accepted)
        self._remember(round_number, set(accepted))
        if self.last_rejected:
            log.info("round %s stage %s: refused %s", round_number, stage, self.last_rejected)
        return [PeerRollouts(peer_id=pub, question=item.question, batch_id=item.batch_id,
                             completions=list(item.completions), rewards=list(item.rewards))
                for pub, rec in sorted(accepted.items()) for item in rec.items]

    def close(self) -> None:
        if self._close_dht:
            self.dht.shutdown()

    # --- steps -------------------------------------------------------------------------

    def _publish(self, key: str, round_number: int, stage: int, own: Sequence[Any],
                 rewards: Sequence[Sequence[float]] | None, problems: Counter) -> None:
        started = self._clock()
        try:
            items = fit_items([
                make_item(group.prompt, group.texts, rewards[i] if rewards else None)
                for i, group in enumerate(own)])
            payload = encode_rollouts(self.peer_id, round_number, stage, self.model_name, items)
        except (RecordError, TypeError, ValueError, IndexError) as exc:
            log.warning("own rollouts could not be encoded: %s", exc)
            problems["own_record"] += 1
            return
        try:
            if not self.dht.store(key, self.dht.subkey, payload, self.expiration):
                log.warning("no DHT peer accepted our rollouts for %s", key)
                problems["dht_error"] += 1
        except Exception as exc:
            log.warning("publishing rollouts failed: %s", exc)
            problems["dht_error"] += 1
        finally:
            self.last_store_seconds = self._clock() - started

    def _judge(self, subkey: Any, value: Any, round_number: int, stage: int,
               verdicts: dict) -> None:
        """Decide on one subkey entry, once per distinct value (polls see the same ones)."""
        if subkey == self.dht.subkey:
            return
        cache_key = subkey if isinstance(subkey, bytes) else ("?", repr(subkey)[:256])
        previous = verdicts.get(cache_key)
        if previous is not None and (previous[0] is value or previous[0] == value):
            return
        publisher = publisher_peer_id(subkey)
        if publisher is None:
            # Not under an owner key: nothing proves who wrote it.
            verdicts[cache_key] = (value, None, None, "unsigned")
            return
        if publisher == self.peer_id:
            return
        try:
            record = decode_rollouts(value, expected_round=round_number, expected_stage=stage,
                                     round_window=self.round_window, expected_peer_id=publisher)
        except RecordError as exc:
            log.debug("refused record from %s: %s", publisher, exc)
            verdicts[cache_key] = (value, publisher, None, exc.reason)
            return
        verdicts[cache_key] = (value, publisher, record, None)

    def _peers_to_wait_for(self, round_number: int) -> set[str] | None:
        """None means "wait for expected_peers valid records"; else the set of peers to await."""
        if self.expected_peers is not None:
            return None
        recent = sorted(r for r in self._publishers if r < round_number)[-_HISTORY_ROUNDS:]
        return set().union(*(self._publishers[r] for r in recent)) - {self.peer_id}

    def _complete(self, verdicts: dict, waiting_for: set[str] | None) -> bool:
        if waiting_for is None:
            valid = {pub for _, pub, rec, _ in verdicts.values() if rec is not None}
            return len(valid) >= self.expected_peers
        # A known peer counts as in once it published anything signed, even a refused record:
        # waiting longer would not change its answer.
        arrived = {pub for _, pub, _, _ in verdicts.values() if pub is not None}
        return waiting_for <= arrived

    def _remember(self, round_number: int, publishers: set[str]) -> None:
        self._publishers.setdefault(round_number, set()).update(publishers)
        for old in sorted(self._publishers)[:-(_HISTORY_ROUNDS + 1)]:
            del self._publishers[old]
