"""How a GRPO step weighs completions that another peer's policy sampled.

A peer's own completions are on-policy: its model drew them, and the group-relative advantage
tells it which of its own habits to strengthen or weaken. Another peer's completions are samples
of a different policy. Pushing down a below-average completion the local policy would almost never
write moves probability onto everything else, garbage included: measured here, training on other
peers' negative samples as if they were one's own raised a peer's entropy within ten rounds and its
reward collapsed (README, "Learning and sharing, measured"). So external samples are handled on
purpose, by ``training.external_samples``:

``positive`` (the default)
    external completions with a negative advantage are left out; those above their group's mean
    are learned from as own ones are (a peer imitates what worked elsewhere, never unlearns what
    it would not have said).
``behaviour``
    every external token is weighted by the truncated importance ratio
    ``min(pi_old / mu, IS_CAP)`` where ``mu`` is the publisher's probability of that token when it
    sampled it (carried, bounded, in its rollout record) and ``pi_old`` ours before the step:
    a token our policy finds much less likely than the publisher did counts for little, either
    way. A completion that came without the publisher's log-probs (another model, an older peer)
    falls back to ``positive``.
``behaviour-positive``
    ``behaviour``'s weights on ``positive``'s rows.
``as-own``
    rl-swarm's way: external completions exactly like own ones (kept for comparison).

Whatever the mode, external tokens together weigh at most ``J / (I + J)`` of a step (``share_cap``;
I own and J external groups a round): own groups are kept only when their rewards differ and
external ones are chosen for it, so by token count they would otherwise be most of the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

MODES = ("positive", "behaviour", "behaviour-positive", "as-own")
IS_CAP = 1.0  # truncated importance sampling: a token never counts more than its own on-policy weight


@dataclass
class Row:
    """One completion as a step sees it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    external: bool = False
    behaviour: list[float] | None = None  # the publisher's per-token log-probs (external only)


def keep(row: Row, mode: str) -> bool:
    """Whether ``row`` takes part in the step at all."""
    if not row.external or mode == "as-own":
        return True
    if mode == "behaviour" and row.behaviour is not None:
        return True
    return row.advantage > 0  # positive, behaviour-positive, and behaviour without log-probs


def token_weights(rows: Sequence[Row], share_cap: float | None) -> list[float]:
    """Each row's weight per completion token, so that the step's weights sum to 1: a token mean,
    except that external tokens together weigh at most ``share_cap`` of it."""
    own = sum(len(r.completion_ids) for r in rows if not r.external)
    ext = sum(len(r.completion_ids) for r in rows if r.external)
    total = own + ext
    if total == 0:
        return [0.0 for _ in rows]
    ext_share = ext / total
    if share_cap is not None and own > 0 and ext_share > share_cap:
        ext_share = share_cap
    own_w = (1 - ext_share) / own if own else 0.0
    ext_w = ext_share / ext if ext else 0.0
    return [ext_w if r.external else own_w for r in rows]


def importance(old_logps: torch.Tensor, behaviour: torch.Tensor, cap: float = IS_CAP) -> torch.Tensor:
    """Per-token truncated ratio ``min(exp(old - mu), cap)``, no gradient."""
    return torch.exp((old_logps - behaviour).clamp(max=20.0)).clamp(max=cap).detach()


def uses_behaviour(mode: str) -> bool:
    return mode in ("behaviour", "behaviour-positive")
