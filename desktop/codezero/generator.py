"""Procedurally generated coding problems with known-good reference solutions.

Each task family draws its parameters and inputs from the generator's RNG and carries a
reference implementation as *source*; expected outputs are computed by running that source, so
the hidden asserts and the reference can never disagree. Output is deterministic for a seed and
call sequence (no set iteration or hash() anywhere in the generation path).
"""

from __future__ import annotations

import copy
import hashlib
import random

from .families import FAMILIES, Task
from .problem import LEVELS, Problem

# Bump when a family, its parameters or its text change: peers then refuse each other's references
# ("gen", version, level, seed) instead of judging a different problem under the same name.
GENERATOR_VERSION = 1


def _build(task: Task, difficulty: int) -> tuple[Problem, str] | None:
    """Run the reference on the cases; None when the cases can't tell solutions apart."""
    namespace: dict = {}
    exec(compile(task.source, f"<reference {task.name}>", "exec"), namespace)  # our own trusted source
    fn, checks = namespace[task.name], {}
    for args in task.cases:
        call = f"{task.name}({', '.join(repr(a) for a in args)})"
        # deepcopy: a reference that mutates its input must not skew the expected value
        checks.setdefault(call, repr(fn(*copy.deepcopy(args))))
    if len(set(checks.values())) < 2:  # a constant function would pass: useless as a reward signal
        return None
    tests = "".join(f"assert {call} == {expected}\n" for call, expected in checks.items())
    example_call, example_out = list(checks.items())[-1]
    question = (f"Write a Python function with the signature `{task.signature}` that {task.description}.\n\n"
                f"Example: `{example_call}` returns `{example_out}`.")
    digest = hashlib.sha256((question + "\0" + tests).encode()).hexdigest()[:12]
    problem = Problem(id=f"gen-{difficulty}-{digest}", question=question, tests=tests,
                      entry_point=task.name, difficulty=difficulty, source="generated")
    return problem, task.source


class ProblemGenerator:
    """Deterministic stream of generated problems: same seed + same calls -> same problems."""

    def __init__(self, seed: int):
        self.seed = seed
        self._rng = random.Random(f"codezero-generator:{seed}")  # str seeds hash stably (sha512)

    def generate(self, difficulty: int) -> Problem:
        return self.generate_with_solution(difficulty)[0]

    def generate_with_solution(self, difficulty: int) -> tuple[Problem, str]:
        """A problem and the reference program that passes its tests."""
        if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 0 <= difficulty < LEVELS:
            raise ValueError(f"difficulty must be an int in 0..{LEVELS - 1}, got {difficulty!r}")
        family = self._rng.choice(FAMILIES[difficulty])
        for _ in range(20):  # redraw inputs on the rare degenerate draw
            built = _build(family(self._rng), difficulty)
            if built is not None:
                return built
        raise RuntimeError(f"{family.__name__} keeps producing indistinguishable cases")  # a bug, not bad luck
