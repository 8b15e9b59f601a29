"""Round sync against a shared round source: join when behind, wait with backoff when ahead."""

import threading

import pytest

from desktop.node.rounds import LocalRoundSource, SyncedRoundSource, Ticket, WaitInterrupted


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
    assert src.next_round(None) == Ticket(0)
    assert src.next_round(4) == Ticket(5)


def test_behind_jumps_to_the_current_round_and_says_so():
    joins = []
    clock = Clock([7])
    src = SyncedRoundSource(clock, on_join=lambda now, was: joins.append((now, was)))
    assert src.next_round(2) == Ticket(7, confirmed=True)
    assert joins == [(7, 3)]
    assert clock.announced == [7]


def test_in_step_plays_the_next_round():
    assert SyncedRoundSource(Clock([3])).next_round(2) == Ticket(3, confirmed=True)
    assert SyncedRoundSource(Clock([None])).next_round(None) == Ticket(0, confirmed=False)


def test_ahead_waits_with_doubling_backoff_capped():
    stop = NoSleep()
    clock = Clock([2, 2, 2, 2, 2, 2, 3])
    src = SyncedRoundSource(clock, stop=stop, backoff_start=5, backoff_max=30)
    assert src.next_round(2) == Ticket(3, confirmed=True)
    assert stop.waits == [5, 10, 20, 30, 30, 30]


def test_peer_consensus_never_makes_a_peer_wait():
    stop = NoSleep()
    src = SyncedRoundSource(Clock([1], wait_when_ahead=False), stop=stop)
    assert src.next_round(4) == Ticket(5)
    assert stop.waits == []


def test_stop_while_waiting():
    stop = NoSleep()
    stop.set()
    with pytest.raises(WaitInterrupted):
        SyncedRoundSource(Clock([0]), stop=stop).next_round(3)


def test_an_unreachable_chain_is_not_raced_ahead_of():
    """Chain down after round 3: the node trains on under round 3's number, unconfirmed; when the
    chain answers again it plays the chain's next round, confirmed, and never one it made up."""
    stop = NoSleep()
    seen = []
    clock = Clock([3, None, None, None, 3, 4])
    src = SyncedRoundSource(clock, stop=stop, backoff_start=1, on_reachable=seen.append)
    assert src.next_round(2) == Ticket(3, confirmed=True)
    played = [src.next_round(3) for _ in range(3)]
    assert played == [Ticket(3, confirmed=False)] * 3
    assert src.next_round(3) == Ticket(4, confirmed=True)  # waited once at 3, then the chain moved
    assert stop.waits == [1]
    assert seen == [True, False, True]


def test_confirmed_round_restored_after_offline_rounds_does_not_wait():
    """A node restarted after playing offline rounds knows which round the chain last named."""
    src = SyncedRoundSource(Clock([3]), stop=NoSleep())
    src.confirmed = 2  # from the checkpoint: rounds after 2 were played offline
    assert src.next_round(8) == Ticket(3, confirmed=True)


def test_stop_commands_come_in_as_lines():
    import io

    from desktop.node.stop import StopControl

    unknown = []
    stop = StopControl()
    stop.follow(io.StringIO("hello\nfinish-round\n"), on_unknown=unknown.append).join(5)
    assert stop.after_round.is_set()
    assert not stop.now.is_set()
    assert unknown == ["hello"]
    stop.follow(io.StringIO("  stop \n")).join(5)
    assert stop.now.is_set()
    assert stop.reason == "stop-command"
    idle = StopControl()
    idle.follow(io.StringIO("")).join(5)  # end of stream is not a stop
    assert not idle.now.is_set()
    assert not idle.after_round.is_set()
