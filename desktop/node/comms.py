"""Who a node talks to: the one protocol the game loop knows for sharing rollouts. The DHT
(swarm.exchange.DHTCommunication), the lab's in-memory board and a peer alone (``SinglePeer``)
plug in behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

from desktop.swarm.types import Gathered

if TYPE_CHECKING:
    from desktop.swarm.records import RolloutItem


class Communication(Protocol):
    peers_seen: set[str]
    shares: bool  # whether anything published reaches anyone (else no work is done for readers)

    def publish(self, round_number: int, stage: int, own: Sequence[RolloutItem]) -> bool:
        """Publish our rollouts of this round (with our own rewards, a hint for readers)."""

    def gather(self, round_number: int, stage: int) -> Gathered:
        """Peers' rollouts published lately that we have not been given before, and the records
        refused on the way (by reason)."""

    def close(self) -> None: ...


class SinglePeer:
    """No swarm: nothing is published and nothing arrives."""

    peers_seen: set[str] = set()
    shares = False

    def publish(self, round_number: int, stage: int, own: Sequence[RolloutItem]) -> bool:
        return False

    def gather(self, round_number: int, stage: int) -> Gathered:
        return Gathered()

    def close(self) -> None:
        pass
