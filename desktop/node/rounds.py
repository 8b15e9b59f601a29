"""Where round numbers come from: a peer alone counts them itself; the chain (chain.link's
clock) or the peers' consensus (swarm.clock) plug in behind ``SharedRoundSource`` and
``SyncedRoundSource`` follows them. Light (no torch)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol


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
