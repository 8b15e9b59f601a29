"""Round sync against a shared round source: join when behind, wait with backoff when ahead."""

import threading

import pytest

from desktop.node.rounds import LocalRoundSource, SyncedRoundSource, WaitInterrupted


class Clock:
    """A shared round source whose round moves on after a number of reads (like a chain)."""

    def __init__(self, rounds, wait_when_ahead=True):
        self.rounds = list(rounds)
        self.wait_when_ahead = wait_when_ahead
        self.reads = 0
        self.announced = []

    def announce(self, round_number):
        self.announced.append(round_number)

    def current_round(self):
        self.reads += 1
        return self.rounds.pop(0) if len(self.rounds) > 1 else self.rounds[0]


class NoSleep(threading.Event):
    def __init__(self):
        super().__init__()
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


def test_local_source_counts_from_zero():
    src = LocalRoundSource()
    assert src.next_round(None) == 0 and src.next_round(4) == 5


def test_behind_jumps_to_the_current_round_and_says_so():
    joins = []
    clock = Clock([7])
    src = SyncedRoundSource(clock, on_join=lambda now, was: joins.append((now, was)))
    assert src.next_round(2) == 7
    assert joins == [(7, 3)] and clock.announced == [7]


def test_in_step_plays_the_next_round():
    assert SyncedRoundSource(Clock([3])).next_round(2) == 3
    assert SyncedRoundSource(Clock([None])).next_round(None) == 0


def test_ahead_waits_with_doubling_backoff_capped():
    stop = NoSleep()
    clock = Clock([2, 2, 2, 2, 2, 2, 3])
    src = SyncedRoundSource(clock, stop=stop, backoff_start=5, backoff_max=30)
    assert src.next_round(2) == 3
    assert stop.waits == [5, 10, 20, 30, 30, 30]


def test_peer_consensus_never_makes_a_peer_wait():
    stop = NoSleep()
    src = SyncedRoundSource(Clock([1], wait_when_ahead=False), stop=stop)
    assert src.next_round(4) == 5 and stop.waits == []


def test_stop_while_waiting():
    stop = NoSleep()
    stop.set()
    with pytest.raises(WaitInterrupted):
        SyncedRoundSource(Clock([0]), stop=stop).next_round(3)
