"""What a supervised run is and how it ended: its states, the restart policy, the outcome.
Plain data (no Qt), so the window, the tray and the tests read runs without a process."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

POSIX = os.name == "posix"


class ProcState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 3
    backoff_start: float = 2.0
    backoff_factor: float = 2.0
    backoff_max: float = 60.0
    reset_after: float = 300.0  # a run this long (seconds) was healthy: forget earlier crashes

    def delay(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_start * self.backoff_factor ** (attempt - 1))


@dataclass(frozen=True)
class Outcome:
    """How one run ended. exit_code is None when the program never started."""

    exit_code: int | None
    exit_status: str  # "normal" | "crashed" (killed by a signal, or never started)
    state: ProcState
    was_requested_stop: bool
    last_error: str | None
    stderr_tail: str
    restarts: int  # automatic restarts that led up to this run
    name: str = "process"
    last_round: int | None = None  # the node's last completed round, when known

    @property
    def ok(self) -> bool:
        return self.state is ProcState.STOPPED

    def describe(self) -> str:
        who = f"The {self.name}"
        if self.ok:
            done = self.last_round is not None and self.last_round >= 0
            after = f" after round {self.last_round}" if done else ""
            return f"{who} stopped{after}."
        if self.exit_code is None:
            how = "could not start"
        elif self.exit_status == "crashed" and POSIX:
            how = f"was killed by signal {self.exit_code}"
        else:
            how = f"crashed (exit code {self.exit_code})"
        return f"{who} {how}: {self.last_error}" if self.last_error else f"{who} {how}."
