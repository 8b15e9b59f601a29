"""The node's link to the coordinator, its one object for everything chain: which chain (the
profile, chain/connect), the client (chain/client), the submission queue (chain/queue), the round
the chain names (``clock()``), bootnodes, registration, rewards and winners.

``ChainLink.open(config, data_dir, chain_dir, peer_id, sink)`` finds the profile's coordinator and
the signed-in account, or says there is none. Writes go through a submission queue on disk and are flushed on a background thread (after every
round, and every ``retry_every`` seconds while something is pending), so a chain or login server
that is down never stops training and no submission is lost or doubled. Rounds played while the
chain could not be reached are not the chain's: their rewards are added to the next round the
chain names, never submitted under a round number of our own.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
from pathlib import Path

from desktop.chain.client import ChainError, ChainRoundSource, CoordinatorClient, reward_to_chain
from desktop.chain.connect import make_client, resolve_profile, services_path, signed_in_org
from desktop.chain.profiles import ChainProfile
from desktop.chain.queue import SubmissionQueue

log = logging.getLogger(__name__)

NEGATIVE_TTL = 10.0  # seconds before asking again about a peer the chain did not know


class ChainLink:
    def __init__(self, client: CoordinatorClient, submissions: SubmissionQueue, peer_id: str, sink, *,
                 submit_every: int = 1, retry_every: float = 10.0, profile: ChainProfile | None = None) -> None:
        self.profile = profile
        self.client = client
        self.submissions = submissions
        self.peer_id = peer_id
        self.sink = sink
        self.submit_every = submit_every
        self.signal = 0.0  # own rewards summed since the last submission (rl-swarm's signal)
        self.best: dict[str, float] = {}  # peer id -> best mean reward of its rollouts since then
        self.rounds = 0
        self._registered: set[str] = set()
        self._unregistered: dict[str, float] = {}
        self.played = 0  # rounds whose rewards are in ``signal``
        self.retry_every = retry_every
        self._wake: queue_mod.Queue = queue_mod.Queue()
        self._thread = threading.Thread(target=self._flusher, name="chain-flush", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, config, data_dir: Path, chain_dir: Path, peer_id: str, sink) -> "ChainLink | None":
        """The link to the config's coordinator, or None when the profile has none (no local
        services running, or chain.enabled false): the node then counts its rounds itself."""
        profile = resolve_profile(config, data_dir)
        if profile is None:
            log.info("no coordinator chain for profile %s: rounds are counted locally", config.profile)
            return None
        org_id = config.chain.org_id or signed_in_org(profile)
        if org_id is None:
            sink.emit("warning", message="not signed in on the login server: rewards are queued until you sign in")
        following = services_path(config, data_dir) if config.profile in ("local", "swarm") else None
        client = make_client(profile, org_id, following)
        chain_dir.mkdir(parents=True, exist_ok=True)
        log.info("coordinator %s on %s (org %s)", profile.contract_address, profile.rpc_url, org_id)
        return cls(client, SubmissionQueue(chain_dir / "submissions.json", client), peer_id, sink,
                   submit_every=config.chain.submit_every, profile=profile)

    def clock(self) -> ChainRoundSource:
        """The chain as the swarm's clock (what node.rounds.SyncedRoundSource follows)."""
        return ChainRoundSource(self.client)

    def bootnodes(self) -> list[str]:
        try:
            return self.client.bootnodes()
        except ChainError as exc:
            self.sink.emit("warning", message=f"could not read bootnodes from the chain: {exc}")
            return []

    def publish_bootnode(self, maddrs: list[str]) -> None:
        try:
            self.client.add_bootnodes(maddrs)
        except ChainError as exc:
            self.sink.emit("warning", message=f"could not put this peer's address on chain: {exc}")

    def registered(self, peer_ids) -> set[str]:
        """Which of ``peer_ids`` are registered on the coordinator. Answers are remembered (a
        registration never goes away; a missing one is asked again after ``NEGATIVE_TTL`` s), so
        a peer pays for each stranger once. While the chain cannot say, only peers it named
        before are let through."""
        now = time.monotonic()
        ask = [p for p in peer_ids if p not in self._registered
               and now - self._unregistered.get(p, -1e9) > NEGATIVE_TTL]
        if ask:
            for start in range(0, len(ask), 64):
                batch = ask[start:start + 64]
                try:
                    eoas = self.client.eoa_of(batch)
                except Exception as exc:  # ChainError or worse: nobody new this time
                    log.debug("registration check failed: %s", exc)
                    break
                for peer in batch:
                    if eoas.get(peer):
                        self._registered.add(peer)
                        self._unregistered.pop(peer, None)
                    else:
                        self._unregistered[peer] = now
        while len(self._unregistered) > 4096:
            self._unregistered.pop(next(iter(self._unregistered)))
        return {p for p in peer_ids if p in self._registered}

    def register(self) -> None:
        """Queued like any submission; its flush reports round -1 (not tied to a round)."""
        self.submissions.enqueue_register(self.peer_id)
        self._wake.put(-1)

    def after_round(self, round_number: int, stats) -> None:
        self.signal += stats.reward_sum
        self.played += 1
        for peer, reward in stats.peer_rewards.items():
            self.best[peer] = max(reward, self.best.get(peer, float("-inf")))
        if not getattr(stats, "confirmed", True):
            return  # played while the chain was away: its reward waits for the chain's next round
        self.rounds += 1
        if self.rounds % self.submit_every:
            return
        reward = reward_to_chain(self.signal)
        self.submissions.enqueue_reward(round_number, 0, reward, self.peer_id)
        winner = max(self.best, key=self.best.get) if self.best else self.peer_id
        self.submissions.enqueue_winners(round_number, [winner], self.peer_id)
        self.sink.emit("chain_queued", round=round_number, reward=reward, rounds=self.played)
        self.signal, self.best, self.played = 0.0, {}, 0
        self._wake.put(round_number)

    def _flusher(self) -> None:
        while True:
            try:
                round_number = self._wake.get(timeout=self.retry_every)
            except queue_mod.Empty:  # nothing new: retry what an outage left queued
                if not len(self.submissions):
                    continue
                round_number = -1
            if round_number is None:
                return
            self._flush(round_number)

    def _flush(self, round_number: int):
        try:
            result = self.submissions.flush()
        except Exception as exc:  # the queue keeps everything; say why and try next time
            log.warning("submission flush failed: %s", exc)
            return None
        error = None if result.error is None else str(result.error)
        if not (result.sent or result.already or result.failed or error):
            return result
        self.sink.emit("chain_submitted", round=round_number, sent=result.sent, already=result.already,
                       failed=result.failed, pending=result.pending, error=error)
        return result

    def close(self, timeout: float = 15.0) -> None:
        """Stop the flusher; one last bounded flush so a clean stop leaves little queued."""
        self._wake.put(None)
        self._thread.join(timeout)
        done = threading.Thread(target=self._flush, args=(-1,), daemon=True)
        done.start()
        done.join(timeout)
