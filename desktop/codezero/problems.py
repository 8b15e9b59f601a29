"""Where a solver's problems come from: a peer's own stream over a problem set or the generator.

``Problem`` (problem.py) and the data sets (datasets.py) are re-exported here for the callers
that name a problem source and its problems together.
"""

from __future__ import annotations

import dataclasses
import random

from .datasets import MBPP_HUB_NAME, humaneval_solutions, load_humaneval, load_mbpp  # noqa: F401
from .generator import ProblemGenerator
from .problem import LEVELS, Problem, ProblemSourceError  # noqa: F401
from .refs import generated_ref


# ---------------------------------------------------------------------------------------------
# One problem per training round


class ProblemSource:
    """Deterministic problem picker: next(index) depends only on (seed, index, spec).

    ``seed`` is a string or int; a node passes its training seed and peer id, so no two peers
    share a stream. A fixed pool is walked in a seed-shuffled order, so every problem comes up
    once before any repeats; generated problems are drawn fresh from a generator seeded by
    (seed, index) and carry the reference others rebuild them from.
    """

    def __init__(self, seed, pool: list[Problem] | None = None, levels: tuple[int, ...] = (),
                 generated_pool: int | None = None):
        if not pool and not levels:
            raise ProblemSourceError("The problem source is empty.")
        self.seed, self.levels = seed, levels
        self.generated_pool = generated_pool  # generated: cycle through this many problems per level
        self.pool = list(pool or [])
        random.Random(f"problem-order:{seed}").shuffle(self.pool)

    def with_seed(self, seed) -> "ProblemSource":
        """The same problems in another peer's stream."""
        return ProblemSource(seed, pool=self.pool, levels=self.levels, generated_pool=self.generated_pool)

    def next(self, index: int, level: int | None = None) -> Problem:
        """The ``index``-th problem of this stream (at ``level``, for generated problems)."""
        if self.pool:
            return self.pool[index % len(self.pool)]
        if self.generated_pool:  # a finite set per level, visited again and again, like a data set
            chosen = self.levels[index % len(self.levels)] if level is None else level
            rng = random.Random(f"problem-pool:{self.seed}:{chosen}:{index % self.generated_pool}")
        else:
            rng = random.Random(f"problem-round:{self.seed}:{index}")
        generator_seed = rng.getrandbits(64)
        if not self.generated_pool:
            chosen = rng.choice(self.levels) if level is None else level
        problem = ProblemGenerator(generator_seed).generate(chosen)
        return dataclasses.replace(problem, ref=generated_ref(chosen, generator_seed))


def load_problems(spec: str, seed, *, cache_dir: str | None = None, generated_pool: int | None = None) -> ProblemSource:
    """spec: "humaneval", "generated", "generated:N" (N or "N,M" levels 0..4), "mbpp" (hub),
    or an MBPP hub dataset name / local .json(l) path."""
    spec = spec.strip()
    if spec == "humaneval":
        return ProblemSource(seed, pool=load_humaneval())
    if spec == "generated" or spec.startswith("generated:"):
        try:
            levels = tuple(int(x) for x in spec.partition(":")[2].split(",")) if ":" in spec else tuple(range(LEVELS))
        except ValueError:
            levels = (-1,)
        if any(lv not in range(LEVELS) for lv in levels):
            raise ProblemSourceError(f"Bad problem spec '{spec}': levels must be 0..{LEVELS - 1}, e.g. 'generated:2'.")
        return ProblemSource(seed, levels=levels, generated_pool=generated_pool)
    problems = load_mbpp(MBPP_HUB_NAME if spec == "mbpp" else spec, cache_dir=cache_dir)
    if not problems:
        raise ProblemSourceError(f"No usable problems in '{spec}'.")
    return ProblemSource(seed, pool=problems)
