"""The pluggable edges of the game loop: where round numbers come from, who we talk to, when to stop.

The node engine only knows these small protocols: a peer alone counts rounds itself and talks to
nobody; the chain (a round source) and the DHT (communication) plug in behind the same methods.
Light on purpose (no torch): the node's entry point uses StopControl before loading anything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from desktop.parent_watch import follow_commands
from desktop.swarm.types import PeerRollouts

if TYPE_CHECKING:
    from desktop.swarm.records import RolloutItem


class StopControl:
    """Asked from signal handlers or other threads: stop now, or after the current round."""

    def __init__(self) -> None:
        self.now = threading.Event()
        self.after_round = threading.Event()
        self.reason = "finished"

    def stop(self, reason: str = "signal") -> None:
        self.reason = reason
        self.now.set()

    def finish_round(self, reason: str = "finish-round") -> None:
        self.reason = reason
        self.after_round.set()

    def follow(self, stream, on_unknown=None) -> threading.Thread:
        """Take commands from ``stream``, one per line: ``stop`` and ``finish-round``. For a node
        whose parent cannot signal it (the app on Windows, the node inside WSL): the app writes to
        the node's stdin instead. End of stream is no command: an app that wants a stop says so."""
        return follow_commands(stream, {"stop": lambda: self.stop(reason="stop-command"),
                                        "finish-round": self.finish_round}, on_unknown)


@dataclass(frozen=True)
class Ticket:
    """The round to play next. ``confirmed``: the swarm's authority (the chain) named this round
    now; an unconfirmed round is played while no authority can be reached, and is never
    submitted as a chain round of its own."""

    round: int
    confirmed: bool = False


class RoundSource(Protocol):
    def next_round(self, last_completed: int | None) -> Ticket:
        """The round to play next, given the last round this peer completed (None: none yet)."""


class LocalRoundSource:
    """A counter: the round after the last completed one, starting at 0."""

    def next_round(self, last_completed: int | None) -> Ticket:
        return Ticket(0 if last_completed is None else last_completed + 1)


class SharedRoundSource(Protocol):
    """Whoever keeps the swarm's clock: the chain's currentRound(), or the peers' consensus."""

    wait_when_ahead: bool  # an authority (the chain) makes early peers wait; peer consensus does not

    def current_round(self) -> int | None:
        """The round the swarm is playing now, or None while unknown."""

    def announce(self, round_number: int) -> None:
        """Tell the swarm which round this peer starts (a no-op for an authority)."""


class WaitInterrupted(Exception):
    """The node was asked to stop while waiting for the swarm's round."""


class SyncedRoundSource:
    """Follows a shared round source.

    Behind it: jump to the current round (``on_join``). An authority (the chain) that names a
    round this peer already played: wait with backoff (``backoff_start`` doubling up to
    ``backoff_max``) for the next one. An authority that cannot be reached: play on without
    claiming a round, under the last round's number (``confirmed=False``), so a node never races
    ahead of the chain and its rewards wait for the chain's next round. ``confirmed`` is the last
    round the authority named and this peer played (restored from the checkpoint on restart).
    """

    def __init__(self, shared: SharedRoundSource, *, stop: threading.Event | None = None,
                 backoff_start: float = 5.0, backoff_max: float = 900.0,
                 on_join: Callable[[int, int], None] | None = None,
                 on_wait: Callable[[int, int, float], None] | None = None,
                 on_reachable: Callable[[bool], None] | None = None) -> None:
        self.shared = shared
        self.stop = stop or threading.Event()
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.on_join = on_join
        self.on_wait = on_wait
        self.on_reachable = on_reachable
        self.confirmed: int | None = None
        self.reachable: bool | None = None

    def next_round(self, last_completed: int | None) -> Ticket:
        ticket = self._choose(last_completed)
        self.shared.announce(ticket.round)
        return ticket

    def _note(self, reachable: bool) -> None:
        if reachable != self.reachable:
            self.reachable = reachable
            if self.on_reachable:
                self.on_reachable(reachable)

    def _choose(self, last_completed: int | None) -> Ticket:
        wanted = 0 if last_completed is None else last_completed + 1
        authority = self.shared.wait_when_ahead
        if self.confirmed is None:  # no record of which rounds were the chain's: assume all were
            self.confirmed = last_completed
        delay = self.backoff_start
        while True:
            current = self.shared.current_round()
            if authority:
                self._note(current is not None)
            if current is None:  # unknown: play on, claiming nothing
                return Ticket(wanted if not authority else (last_completed or 0))
            if not authority:  # peer consensus: join when behind, never wait
                if current > wanted and self.on_join:
                    self.on_join(current, wanted)
                return Ticket(max(current, wanted))
            if self.confirmed is None or current > self.confirmed:
                if current > wanted and self.on_join:
                    self.on_join(current, wanted)
                self.confirmed = current
                return Ticket(current, confirmed=True)
            if self.on_wait:  # this chain round is played here already: wait for the next
                self.on_wait(self.confirmed + 1, current, delay)
            if self.stop.wait(delay):
                raise WaitInterrupted()
            delay = min(delay * 2, self.backoff_max)


class Communication(Protocol):
    last_rejected: dict[str, int]  # reason -> count of peer records refused in the last exchange
    peers_seen: set[str]
    shares: bool  # whether anything published reaches anyone (else no work is done for readers)

    def publish(self, round_number: int, stage: int, own: Sequence[RolloutItem]) -> bool:
        """Publish our rollouts of this round (with our own rewards, a hint for readers)."""

    def gather(self, round_number: int, stage: int) -> list[PeerRollouts]:
        """Peers' rollouts published lately that we have not been given before."""

    def close(self) -> None: ...


class SinglePeer:
    """No swarm: nothing is published and nothing arrives."""

    last_rejected: dict[str, int] = {}
    peers_seen: set[str] = set()
    shares = False

    def publish(self, round_number: int, stage: int, own: Sequence[RolloutItem]) -> bool:
        return False

    def gather(self, round_number: int, stage: int) -> list[PeerRollouts]:
        return []

    def close(self) -> None:
        pass
