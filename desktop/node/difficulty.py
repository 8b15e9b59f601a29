"""A peer's own difficulty: keep its pass rate near a target by moving between problem levels.

Problems every completion solves, or none does, give a group no reward spread and teach
nothing; a pass rate near one half gives the most spread. After each round the tuner folds the
round's pass rate (the share of completions the judge found correct) into a moving average and,
after at least ``dwell`` rounds at a level, moves one level up when the average is above
``target + band`` or down when it is below ``target - band``. Pure: no torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop.codezero.problems import LEVELS


@dataclass
class DifficultyTuner:
    level: int = 0
    max_level: int = LEVELS - 1
    target: float = 0.5
    band: float = 0.15
    dwell: int = 4
    smoothing: float = 0.3  # weight of the newest round in the moving average
    rate: float | None = None
    rounds_here: int = 0

    def record(self, pass_rate: float) -> int:
        """Fold in one round's pass rate; returns the level for the next round."""
        self.rate = pass_rate if self.rate is None else (1 - self.smoothing) * self.rate + self.smoothing * pass_rate
        self.rounds_here += 1
        if self.rounds_here >= self.dwell:
            step = 1 if self.rate > self.target + self.band else -1 if self.rate < self.target - self.band else 0
            new = min(self.max_level, max(0, self.level + step))
            if new != self.level:
                self.level, self.rate, self.rounds_here = new, None, 0
        return self.level

    def state(self) -> dict:
        return {"level": self.level, "rate": self.rate, "rounds_here": self.rounds_here}

    def restore(self, state: dict) -> None:
        if isinstance(state, dict) and isinstance(state.get("level"), int):
            self.level = min(self.max_level, max(0, state["level"]))
            rate = state.get("rate")
            self.rate = float(rate) if isinstance(rate, (int, float)) else None
            self.rounds_here = int(state.get("rounds_here") or 0)
