"""The CodeZero solver reward, kept to RL Swarm's shape so rewards stay comparable across the swarm.

* -1.2  the completion is not text at all,
* -1.0  it has no ```python fenced block,
* otherwise the judge's verdict (0 or 1), plus 0.2 when generation stopped on its own or minus 0.2
  when it ran into ``max_new_tokens`` (rambling is discouraged only once there is code to judge).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.codezero.judges import Judge
    from desktop.codezero.problems import Problem

NOT_TEXT = -1.2
NO_CODE = -1.0
STOP_BONUS = 0.2

# A closed fence: the language tag (python/python3, any case) must end its line. An unclosed
# block, typical of a completion cut off by the token limit, does not count as a fence.
FENCE_RE = re.compile(r"```[ \t]*python3?[ \t]*\r?\n(.*?)```", re.IGNORECASE | re.DOTALL)


def extract_python(completion: str) -> str | None:
    """The code of the FIRST ```python block, or None when there is none.

    The first block is the answer: the prompt asks for one block, and blocks that follow are
    usually usage examples or tests the model wrote, which would be judged instead of the
    solution. An empty block gives ``""`` (a fence was used; the judge decides).
    """
    if not isinstance(completion, str):
        return None
    match = FENCE_RE.search(completion)
    return None if match is None else match.group(1)


def codezero_reward(completion, problem: "Problem", judge: "Judge", *, hit_token_limit: bool) -> float:
    """The reward of one completion for ``problem``; see the module docstring for the shape."""
    if not isinstance(completion, str):
        return NOT_TEXT
    code = extract_python(completion)
    if code is None:
        return NO_CODE
    correct = 1.0 if judge.judge(problem, code) == 1 else 0.0
    return correct + (-STOP_BONUS if hit_token_limit else STOP_BONUS)
