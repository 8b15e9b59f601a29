"""The swarm's round when no chain keeps it: what the other peers say they are playing.

Each peer announces the round it starts in the roster (``directory``). The current round is the
median of the announcements of peers seen lately, so one peer lying about its round cannot drag
the swarm along. A peer behind (restarted, or slow) jumps to it; peers never wait for each other
here (there is no authority; the chain's round source does make early peers wait).
"""

from __future__ import annotations

import statistics
import time

from desktop.swarm.directory import Directory


class PeerRoundClock:
    wait_when_ahead = False

    def __init__(self, directory: Directory, *, max_age: float = 120.0) -> None:
        self.directory = directory
        self.max_age = max_age  # older announcements are from peers that left (clocks may differ a little)

    @property
    def last_rejected(self) -> dict[str, int]:
        return self.directory.last_rejected

    def announce(self, round_number: int) -> None:
        self.directory.announce(round_number)

    def current_round(self) -> int | None:
        self.directory.refresh()
        now = time.time()
        rounds = [e.round for e in self.directory.entries() if now - e.at <= self.max_age]
        return int(statistics.median_low(rounds)) if rounds else None
