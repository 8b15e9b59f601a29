"""What a problem is: the text shown to the model and the tests that judge an answer. The ground
of the codezero package: every other module of it builds on this one, which imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = 5  # difficulty levels of generated problems: 0 (easiest) .. LEVELS - 1


@dataclass(frozen=True)
class Problem:
    """One problem: the text shown to the model and the Python tests that judge an answer.

    ``tests`` is Python source that runs after the candidate's code in the same module and
    raises (e.g. AssertionError) when the candidate is wrong.
    """

    id: str
    question: str
    tests: str
    entry_point: str | None = None
    difficulty: int | None = None  # 0 (easiest) .. 4 for generated problems
    source: str = "local"
    # Code the tests share with the answer and that reveals nothing of the expected results (a
    # prompt's helper functions, test set-up): the judge runs it beside the candidate too.
    context: str = ""
    # How other peers can rebuild this problem (desktop.codezero.refs); None: they cannot.
    ref: tuple | None = None


class ProblemSourceError(Exception):
    """A problem set could not be loaded; the message is meant for a person, not a traceback."""
