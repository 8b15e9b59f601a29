"""SAPO's choice of what to train on: I own groups and J groups other peers published.

A group whose G rewards are all equal has zero advantage everywhere: it costs a forward and
backward pass and teaches nothing. So own groups are kept only with reward spread, and external
groups are tried most-promising first: those whose publisher's own rewards differ, then those
that came without rewards, then those the publisher found flat. Each is rebuilt from its problem
reference and judged here (the publisher's rewards are a hint, never trusted); one without spread
after our own judging is passed over. At most ``max_tries`` external groups are judged a round,
so a swarm that sends many flat groups cannot make a peer spend its time judging them.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from desktop.codezero.problems import Problem
from desktop.codezero.refs import UnknownRef
from desktop.swarm.records import batch_id_of
from desktop.swarm.types import PeerRollouts


def has_spread(rewards: Sequence[float]) -> bool:
    return len(rewards) >= 2 and max(rewards) - min(rewards) > 1e-9


def promise(rollouts: PeerRollouts) -> int:
    """0: the publisher's rewards differ; 1: it sent none; 2: it found them all equal."""
    if not rollouts.rewards:
        return 1
    return 0 if has_spread(rollouts.rewards) else 2


def order_external(received: Sequence[PeerRollouts], rng: random.Random, min_g: int = 2) -> list[PeerRollouts]:
    """Candidates in the order they are worth judging; random within a level of promise, one
    group per (peer, problem)."""
    seen, unique = set(), []
    for r in received:
        if len(r.completions) >= min_g and (r.peer_id, r.batch_id) not in seen:
            seen.add((r.peer_id, r.batch_id))
            unique.append(r)
    rng.shuffle(unique)
    return sorted(unique, key=promise)


@dataclass
class External:
    rollouts: PeerRollouts
    problem: Problem
    rewards: list[float]


def choose_external(received: Sequence[PeerRollouts], want: int, *, resolve: Callable[[tuple], Problem],
                    judge: Callable[[PeerRollouts, Problem], list[float]], rng: random.Random,
                    max_tries: int | None = None, refused: Counter | None = None) -> tuple[list[External], list[External]]:
    """(chosen: up to ``want`` groups with spread after our judging, judged: every group we judged).

    ``refused`` counts the candidates passed over: "unknown_ref" / "generator_version" / ... (a
    reference we cannot rebuild, never run) and "batch_id" (rebuilt, but to another question).
    """
    refused = refused if refused is not None else Counter()
    chosen: list[External] = []
    judged: list[External] = []
    tries = max_tries if max_tries is not None else 2 * want + 2
    if want <= 0:
        return chosen, judged
    for candidate in order_external(received, rng):
        if len(chosen) >= want or len(judged) >= tries:
            break
        try:
            problem = resolve(candidate.ref)
        except UnknownRef as exc:
            refused[exc.reason] += 1
            continue
        if batch_id_of(problem.question) != candidate.batch_id:
            refused["batch_id"] += 1
            continue
        ext = External(candidate, problem, judge(candidate, problem))
        judged.append(ext)
        if has_spread(ext.rewards):
            chosen.append(ext)
    return chosen, judged
