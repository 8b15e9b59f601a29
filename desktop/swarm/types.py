"""Plain data the swarm hands to the node (the node imports this; nothing here imports the node)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PeerRollouts:
    """One group another peer published: its completions for a problem named by ``ref``, to be
    rebuilt, judged and tokenised here. ``rewards`` are the publisher's own (a hint only)."""

    peer_id: str
    round: int
    ref: tuple
    batch_id: str
    completions: list[str]
    rewards: list[float] = field(default_factory=list)
    model: str = ""                                       # the publisher's model, as it named it
    stopped: list[bool] = field(default_factory=list)     # per completion: ended on its own
    tokens: list[list[int]] = field(default_factory=list)  # per completion: the ids its model sampled
    logps: list[list[float]] = field(default_factory=list)  # ... and their log-probs then


@dataclass
class Gathered:
    """What one gather brought: the new rollouts, and how many peer records were refused, by
    reason (desktop.swarm.records.REASONS and the exchange's own: unsigned, foreign, ...)."""

    rollouts: list[PeerRollouts] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
