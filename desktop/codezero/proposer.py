"""The CodeZero proposer: picks how hard the next problem is and only offers problems that work.

Pure logic, no networking: ``desktop.swarm.problems_exchange`` moves problems and solver
feedback over the DHT. The difficulty rule follows CodeZero's proposer: every few iterations
the mean of the most recent solver rewards is compared with the mean of the ones before, and
the level moves one step when solvers clearly got better (harder) or worse (easier).
"""

from __future__ import annotations

import math
import random
from collections import deque

from .generator import LEVELS, ProblemGenerator
from .problems import Problem
from .sandbox import SandboxLimits, run_with_tests

# Mean differences such as 0.55 - 0.5 land a hair under 0.05 in binary floating point; the
# rule is meant to fire on exactly +-step, so the comparison gets this much slack.
_EPSILON = 1e-9

PROPOSER_LIMITS = SandboxLimits(cpu_seconds=5, memory_bytes=100 * 2**20, wall_seconds=10)


class DifficultyController:
    """Moves the difficulty level from the stream of per-iteration mean solver rewards.

    ``record`` is called once per proposer iteration that had feedback. Every ``every``
    calls, once ``2 * window`` rewards are known, the mean of the last ``window`` is compared
    with the mean of the ``window`` before: a rise of at least ``step`` makes problems
    harder, a fall of at least ``step`` easier, within ``0 .. levels - 1``.
    """

    def __init__(self, level: int = 0, levels: int = LEVELS, every: int = 5, window: int = 10,
                 step: float = 0.05):
        if levels < 1 or every < 1 or window < 1 or step < 0:
            raise ValueError("levels, every and window must be >= 1 and step >= 0")
        if not 0 <= level < levels:
            raise ValueError(f"level must be in 0..{levels - 1}, got {level}")
        self.level = level
        self.levels = levels
        self.every = every
        self.window = window
        self.step = step
        self.iterations = 0
        self.history: deque[float] = deque(maxlen=2 * window)  # older values never matter

    def record(self, mean_solver_reward: float) -> int:
        """Add one iteration's mean reward; returns the (possibly changed) level."""
        reward = float(mean_solver_reward)
        if not math.isfinite(reward):
            return self.level  # a NaN would poison both means for 2 * window iterations
        self.iterations += 1
        self.history.append(reward)
        if self.iterations % self.every == 0 and len(self.history) == 2 * self.window:
            values = list(self.history)
            before = sum(values[:self.window]) / self.window
            recent = sum(values[self.window:]) / self.window
            change = recent - before
            if change >= self.step - _EPSILON:
                self.level = min(self.level + 1, self.levels - 1)
            elif change <= -self.step + _EPSILON:
                self.level = max(self.level - 1, 0)
        return self.level


def wrong_answer(entry_point: str) -> str:
    """A program that defines the function but answers nothing: the tests must reject it."""
    return f"def {entry_point}(*args, **kwargs):\n    return None\n"


class Proposer:
    """Generates problems at the controller's level and checks them in the sandbox first.

    A problem is offered only if its reference solution passes its tests and a function that
    returns None fails them: tests nothing can fail are no reward signal, and tests the
    reference fails would punish correct solvers. Generation is deterministic per
    (seed, round, level), so a restarted proposer offers the same problems again.
    """

    def __init__(self, seed: int, controller: DifficultyController | None = None,
                 limits: SandboxLimits = PROPOSER_LIMITS, attempts: int = 3):
        self.seed = seed
        self.controller = controller if controller is not None else DifficultyController()
        self.limits = limits
        self.attempts = max(1, attempts)
        self.last_invalid = 0  # problems thrown away by the last propose() call

    @property
    def level(self) -> int:
        return self.controller.level

    def validate(self, problem: Problem, reference: str) -> bool:
        if not problem.entry_point or not problem.entry_point.isidentifier():
            return False  # no function name means no wrong answer to try
        if not run_with_tests(reference, problem.tests, limits=self.limits).ok:
            return False
        return not run_with_tests(wrong_answer(problem.entry_point), problem.tests,
                                  limits=self.limits).ok

    def propose(self, round_number: int) -> Problem | None:
        """A validated problem at the current level, or None if every attempt failed."""
        level = self.controller.level
        self.last_invalid = 0
        for attempt in range(self.attempts):
            # A string seed hashes stably across processes (random seeds str via sha512).
            rng = random.Random(f"proposer:{self.seed}:{round_number}:{level}:{attempt}")
            try:
                generator = ProblemGenerator(rng.getrandbits(64))
                problem, reference = generator.generate_with_solution(level)
            except (RuntimeError, ValueError):
                self.last_invalid += 1
                continue
            if self.validate(problem, reference):
                return problem
            self.last_invalid += 1
        return None
