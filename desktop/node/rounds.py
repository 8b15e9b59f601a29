"""The pluggable edges of the game loop: where round numbers come from, and who we talk to.

The node engine only knows these small protocols. Today a peer counts rounds itself and plays
alone; the chain (round source) and the DHT (communication) plug in behind the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from desktop.node.grpo import Group


class RoundSource(Protocol):
    def next_round(self, last_completed: int | None) -> int:
        """The round to play next, given the last round this peer completed (None: none yet)."""


class LocalRoundSource:
    """A counter: the round after the last completed one, starting at 0."""

    def next_round(self, last_completed: int | None) -> int:
        return 0 if last_completed is None else last_completed + 1


@dataclass
class PeerRollouts:
    """Rollouts another peer published for a round: texts only, to be judged and tokenised here."""

    peer_id: str
    question: str
    batch_id: str
    completions: list[str]
    rewards: list[float] = field(default_factory=list)


class Communication(Protocol):
    last_rejected: dict[str, int]  # reason -> count of peer records refused in the last exchange

    def exchange(self, round_number: int, stage: int, own: Sequence[Group]) -> list[PeerRollouts]:
        """Publish our rollouts and return the peers' for the same round and stage."""

    def close(self) -> None: ...


class SinglePeer:
    """No swarm: nothing is published and nothing arrives."""

    last_rejected: dict[str, int] = {}

    def exchange(self, round_number: int, stage: int, own: Sequence[Group]) -> list[PeerRollouts]:
        return []

    def close(self) -> None:
        pass
