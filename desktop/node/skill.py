"""Is my model getting better? Skill on problems this peer never trains on.

The training reward is measured on the problems a peer trains on; with a problem pool it meets
the same ones again and again, so that reward can rise by memorising them. Skill is measured on a
small fixed set of held-out problems, the same set for every peer of a swarm (a seed of its own,
never any peer's training stream; for a fixed data set such as HumanEval those problems are taken
out of the training order), answered greedily (one answer each, the model's most likely one) and
judged in the sandbox like any completion: the pass rate and the mean CodeZero reward. Every
``every`` rounds (and before the first), one batched generate call: about a second on the tiny
model. Reported as a ``skill`` event.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from desktop.codezero.problems import Problem, ProblemSource

HELD_OUT_SEED = "held-out"


def held_out(source: ProblemSource, count: int) -> tuple[list[Problem], ProblemSource]:
    """(``count`` held-out problems, the source to train from). A generated source draws them from
    a stream no peer trains on, at its levels in turn; a fixed pool gives them up (the same ones for
    every peer) and trains on the rest."""
    if count <= 0:
        return [], source
    if source.pool:
        canonical = sorted(source.pool, key=lambda p: p.id)  # every peer's pool, in one order
        reserved = ProblemSource(HELD_OUT_SEED, pool=canonical).pool[:min(count, len(canonical) // 4)]
        names = {p.id for p in reserved}
        rest = [p for p in source.pool if p.id not in names]
        return reserved, ProblemSource(source.seed, pool=rest)
    stream = ProblemSource(HELD_OUT_SEED, levels=source.levels)
    return [stream.next(k, level=source.levels[k % len(source.levels)]) for k in range(count)], source


class SkillCheck:
    """``check(round, step)``: the held-out evaluation when it is due (step % every == 0), else None."""

    def __init__(self, trainer, problems: Sequence[Problem], every: int,
                 messages: Callable[[Problem], list[dict]], judge: Callable[[list[str], list[bool], Problem], list[float]]):
        self.trainer = trainer
        self.problems = list(problems)
        self.every = every
        self.messages = messages
        self.judge = judge

    def due(self, step: int) -> bool:
        return bool(self.problems) and self.every > 0 and step % self.every == 0

    def run(self, should_stop: Callable[[], bool] | None = None) -> dict:
        started = time.perf_counter()
        prompt_ids = [self.trainer.encode_prompt(self.messages(p)) for p in self.problems]
        groups = self.trainer.generate([p.question for p in self.problems], prompt_ids, should_stop=should_stop,
                                       greedy=True)
        rewards = [self.judge(g.texts, g.hit_limit, p)[0] for g, p in zip(groups, self.problems)]
        return {"pass_rate": round(sum(r > 0.5 for r in rewards) / len(rewards), 4),
                "reward": round(sum(rewards) / len(rewards), 4), "problems": len(rewards),
                "seconds": round(time.perf_counter() - started, 3)}
