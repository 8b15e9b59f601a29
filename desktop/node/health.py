"""Is this peer's policy collapsing? Watched from one number each round.

The mean log-prob a policy gives its own sampled tokens is minus the entropy of what it samples
(at temperature 1). A learning policy grows surer (the number rises towards 0); a policy that is
being pushed apart spreads its probability over more and more tokens and the number falls: seen
here when peers trained on each other's below-average completions, from -0.39 to -2.5 per token
within ten rounds while the reward collapsed. ``PolicyWatch`` compares the mean of the last
``WINDOW`` rounds with the best such mean so far and says so, once, when it has fallen by more than
``DROP`` nats per token and below ``FLOOR`` (a ``warning`` event and a log line; a policy that only
grows a little less sure while it learns is not warned about), and again when it is back.
"""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger(__name__)

WINDOW = 8
DROP = 1.0  # nats per token below the best window: the policy samples e times more spread out
FLOOR = -2.0  # ... and below this: the benchmarks' bound on a policy that has not collapsed


class PolicyWatch:
    def __init__(self, sink=None, window: int = WINDOW, drop: float = DROP, floor: float = FLOOR) -> None:
        self.sink = sink
        self.window = window
        self.drop = drop
        self.floor = floor
        self.recent: deque[float] = deque(maxlen=window)
        self.best: float | None = None
        self.collapsing = False

    @property
    def current(self) -> float | None:
        return sum(self.recent) / len(self.recent) if len(self.recent) == self.window else None

    def observe(self, round_number: int, own_logp: float | None) -> bool:
        """Take one round's figure (None: no step this round); True while collapsing."""
        if own_logp is None:
            return self.collapsing
        self.recent.append(float(own_logp))
        now = self.current
        if now is None:
            return self.collapsing
        self.best = now if self.best is None else max(self.best, now)
        if not self.collapsing and now < self.best - self.drop and now < self.floor:
            self.collapsing = True
            self._say(f"round {round_number}: this peer's policy is spreading out (its own tokens' mean log-prob "
                      f"fell from {self.best:.2f} to {now:.2f} per token): its completions are turning into noise. "
                      "Lower training.learning_rate, or keep training.external_samples at 'positive'.")
        elif self.collapsing and now >= self.best - self.drop / 2:
            self.collapsing = False
            log.info("round %d: the policy is back (mean log-prob %.2f per token, best %.2f)", round_number, now,
                     self.best)
        return self.collapsing

    def _say(self, message: str) -> None:
        log.warning("%s", message)
        if self.sink is not None:
            self.sink.emit("warning", message=message)
