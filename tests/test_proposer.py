"""The CodeZero proposer: difficulty control, sandbox-checked problems, and the DHT exchange.

Codec and channel rules run against an in-memory DHT with real identities (fast); the
``swarm`` tests run real hivemind peers on 127.0.0.1: proposer A, solver B, hostile M.
"""

import time

import msgpack
import pytest
from cryptography.hazmat.primitives import serialization

from desktop.codezero.problems import Problem
from desktop.codezero.proposer import DifficultyController, Proposer, wrong_answer
from desktop.codezero.sandbox import run_with_tests
from desktop.identity import create_identity
from desktop.swarm.directory import Directory
from desktop.swarm.problems_exchange import (ProposerChannel, ProposerLoop, SolverChannel, decode_feedback,
                                             decode_problems, encode_feedback, encode_problems, feedback_key,
                                             problems_key)
from desktop.swarm.records import RecordError

# --- DifficultyController ----------------------------------------------------------------


def levels_after(controller, rewards):
    return [controller.record(r) for r in rewards]


def test_controller_waits_for_two_windows_then_checks_every_fifth():
    c = DifficultyController()
    # 19 values: not enough history even at iterations 5, 10, 15 despite a huge rise.
    assert levels_after(c, [0.0] * 10 + [1.0] * 9) == [0] * 19
    assert c.record(1.0) == 1  # iteration 20: last 10 mean 1.0 vs 0.0 before
    # Between checks nothing moves, however the rewards look.
    assert levels_after(c, [5.0] * 4) == [1] * 4
    assert c.record(5.0) == 2  # iteration 25


def test_controller_exact_step_boundaries():
    up = DifficultyController()
    assert levels_after(up, [0.5] * 10 + [0.55] * 10)[-1] == 1  # +0.05 exactly: harder
    hold = DifficultyController(level=2)
    assert levels_after(hold, [0.5] * 10 + [0.54] * 10)[-1] == 2  # +0.04: hold
    assert levels_after(hold, [0.5] * 5)[-1] == 2  # flat: hold
    down = DifficultyController(level=2)
    assert levels_after(down, [0.5] * 10 + [0.45] * 10)[-1] == 1  # -0.05 exactly: easier
    hold_down = DifficultyController(level=2)
    assert levels_after(hold_down, [0.5] * 10 + [0.46] * 10)[-1] == 2


def test_controller_caps_and_floors():
    top = DifficultyController(level=4)
    rising = [float(i) for i in range(40)]  # every check sees a rise of 10
    assert set(levels_after(top, rising)) == {4}
    bottom = DifficultyController(level=0)
    assert set(levels_after(bottom, [-r for r in rising])) == {0}
    climb = DifficultyController(level=0)
    got = levels_after(climb, rising)
    assert [got[i] for i in (19, 24, 29, 34, 39)] == [1, 2, 3, 4, 4]


def test_controller_goes_down_then_ignores_nan():
    c = DifficultyController(level=3, every=2, window=2)
    assert levels_after(c, [1.0, 1.0, 0.0, 0.0]) == [3, 3, 3, 2]
    assert c.record(float("nan")) == 2
    assert c.iterations == 4  # not counted at all
    assert levels_after(c, [0.0, -1.0]) == [2, 1]  # [0,0] vs [0,-1]: -0.5
    with pytest.raises(ValueError):
        DifficultyController(level=5)


# --- Proposer ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("level", range(5))
def test_proposer_makes_sandbox_valid_problems_at_the_level(level):
    p = Proposer(seed=7, controller=DifficultyController(level=level))
    problem = p.propose(round_number=3)
    assert problem is not None
    assert problem.difficulty == level
    assert p.last_invalid == 0
    assert not run_with_tests(wrong_answer(problem.entry_point), problem.tests).ok
    # Deterministic per (seed, round, level): a restarted proposer offers the same problem.
    again = Proposer(seed=7, controller=DifficultyController(level=level)).propose(3)
    assert again == problem


@pytest.mark.slow
def test_proposer_rejects_problems_the_sandbox_refutes(monkeypatch):
    p = Proposer(seed=1)
    fine = Problem("x", "q", "assert f(2) == 4\n", entry_point="f", difficulty=0)
    assert p.validate(fine, "def f(x):\n    return x * 2\n")
    assert not p.validate(fine, "def f(x):\n    return x + 3\n")  # reference fails
    assert not p.validate(Problem("x", "q", "assert f(2) is None\n", entry_point="f"),
                          "def f(x):\n    return None\n")  # None passes: no signal
    assert not p.validate(Problem("x", "q", "assert True\n", entry_point=None), "pass\n")
    monkeypatch.setattr(Proposer, "validate", lambda self, problem, ref: False)
    assert p.propose(0) is None
    assert p.last_invalid == 3


# --- codecs and channels on an in-memory DHT ------------------------------------------------


class MemoryDHT:
    """SwarmDHT's store/get over a shared dict, keyed by the identity's real owner subkey.
    No validator: whatever a peer stores reaches the readers, whose decoders must refuse it."""

    def __init__(self, identity, table):
        self.peer_id = identity.peer_id
        ssh = identity.private_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        self.subkey = b"[owner:" + ssh + b"]"
        self.table = table

    def store(self, key, subkey, value, expiration_s):
        self.table.setdefault(key, {})[subkey] = value
        return True

    def get(self, key, timeout=None):
        return dict(self.table.get(key, {}))

    def get_many(self, keys, timeout=None):
        return {k: self.get(k) for k in keys}


@pytest.fixture(scope="module")
def identities(tmp_path_factory):
    root = tmp_path_factory.mktemp("ids")
    return {name: create_identity(root / f"{name}.pem") for name in "ABCM"}


@pytest.fixture
def mem(identities):
    table = {}
    return {name: MemoryDHT(ident, table) for name, ident in identities.items()}


def proposer_channel(dht):
    return ProposerChannel(dht, dht.peer_id, Directory(dht, dht.peer_id, role="proposer"))


def solver_channel(dht):
    directory = Directory(dht, dht.peer_id)
    directory.refresh()
    return SolverChannel(dht, dht.peer_id, directory)


def problem(i=0, level=1, proposer="QmProposer", round_=0, **kw):
    fields = dict(id=f"p{i}", question=f"Write f {i}", tests=f"assert f({i}) == {i}\n",
                  entry_point="f", difficulty=level, source="proposer", ref=("proposer", proposer, round_, f"p{i}"))
    fields.update(kw)
    return Problem(**fields)


def test_codecs_round_trip_and_refuse_bad_records(identities):
    pid = identities["A"].peer_id
    data = encode_problems(pid, 5, [problem(0), problem(1, level=4)])
    record = decode_problems(data, expected_round=6, round_window=1, expected_peer_id=pid)
    assert record.round == 5
    assert record.problems == [problem(0, proposer=pid, round_=5),
                                                         problem(1, level=4, proposer=pid, round_=5)]
    fb = decode_feedback(encode_feedback(pid, 5, identities["B"].peer_id, "p0", [1.0, -0.2]))
    assert fb.rewards == [1.0, -0.2]
    assert fb.mean == pytest.approx(0.4)
    assert fb.proposer == identities["B"].peer_id

    def reason(fn):
        with pytest.raises(RecordError) as info:
            fn()
        return info.value.reason

    def problems_reason(raw, expected_round=5, window=0, signer=None):
        return reason(lambda: decode_problems(raw, expected_round=expected_round,
                                              round_window=window, expected_peer_id=signer))

    pack = lambda obj: msgpack.packb(obj, use_bin_type=True)  # noqa: E731
    good = msgpack.unpackb(data)
    first = good["problems"][0]
    assert problems_reason(b"\xc1junk") == "garbage"
    assert problems_reason(data, expected_round=4, window=3) == "future_round"
    assert problems_reason(data, expected_round=9, window=3) == "stale_round"
    assert problems_reason(data, signer=identities["B"].peer_id) == "forged_publisher"
    for change, why in [({"v": 1}, "schema"), ({"kind": "rollouts"}, "schema"), ({"round": True}, "schema"),
                        ({"problems": [first] * 5}, "oversized"),
                        ({"problems": [first] * 2}, "schema"),
                        ({"problems": [dict(first, difficulty=5)]}, "schema"),
                        ({"problems": [dict(first, tests="x" * 16_001)]}, "oversized"),
                        ({"problems": [dict(first, entry_point="f(); evil")]}, "schema"),
                        ({"extra": 1}, "schema")]:
        assert problems_reason(pack({**good, **change})) == why, change
    fb_good = msgpack.unpackb(encode_feedback(pid, 5, pid, "p0", [1.0]))
    for change in [{"rewards": [11.0]}, {"rewards": [1]}, {"rewards": []},
                   {"rewards": [float("nan")]}, {"problem_id": 7}, {"proposer": 5}]:
        assert reason(lambda: decode_feedback(pack({**fb_good, **change}))) == "schema", change


def test_channels_exchange_and_count_refusals(mem):
    a = proposer_channel(mem["A"])
    m = mem["M"]
    assert a.publish_problems(7, [problem(0), problem(1, question="x" * 9000)]) == ["p0"]
    assert a.last_rejected == {"own_record": 1}  # the misfit is left out, not truncated
    b = solver_channel(mem["B"])  # finds proposer A in the roster
    mine = problem(0, proposer=mem["A"].peer_id, round_=7)
    assert b.fetch_problem(7) == mine
    assert b.last_rejected == {}
    assert b.fetch_problem(6) is None
    assert b.last_rejected == {"future_round": 1}
    assert b.fetch_problem(11) is None
    assert b.last_rejected == {"stale_round": 1}
    assert b.lookup(mine.ref) == mine
    assert b.lookup(("proposer", mem["A"].peer_id, 7, "nope")) is None
    # M: a record claiming to be A's under A's key, an unsigned entry.
    forged = msgpack.unpackb(encode_problems(m.peer_id, 8, [problem(9)]))
    m.store(problems_key(mem["A"].peer_id), m.subkey, msgpack.packb({**forged, "peer_id": mem["A"].peer_id}), 60)
    m.table[problems_key(mem["A"].peer_id)][b"not an owner"] = b"x"
    assert b.fetch_problem(8) == mine
    assert b.last_rejected == {"foreign": 1, "unsigned": 1}
    assert b.publish_feedback(7, mine, [1.0, 20.0])  # clamped to 10
    m.store(feedback_key(mem["A"].peer_id, m.peer_id), m.subkey,
            encode_feedback(mem["B"].peer_id, 7, mem["A"].peer_id, "p0", [10.0]), 60)
    m.table[feedback_key(mem["A"].peer_id, m.peer_id)][mem["C"].subkey] = b"\x00garbage" * 3
    got = a.read_feedback(since_round=0)
    assert [(f.peer_id, f.rewards) for f in got] == [(mem["B"].peer_id, [1.0, 10.0])]
    assert a.last_rejected == {"forged_publisher": 1, "garbage": 1}
    assert a.read_feedback() == []  # the same (peer, round, problem) only once
    # Feedback on another proposer's problem is not ours and is skipped without complaint.
    c = solver_channel(mem["C"])
    other = problem(5, proposer=mem["M"].peer_id)
    assert c.publish_feedback(7, other, [1.0])
    assert a.read_feedback() == []
    assert not c.publish_feedback(7, problem(5, ref=("gen", 1, 0, 1)), [1.0])  # not a proposer's problem
    with pytest.raises(ValueError):
        SolverChannel(mem["B"], mem["A"].peer_id, Directory(mem["B"], mem["B"].peer_id))


@pytest.mark.slow
def test_loop_summary_and_sink(mem, monkeypatch):
    events = []
    prop = Proposer(seed=3, controller=DifficultyController(every=1, window=1))
    loop = ProposerLoop(prop, proposer_channel(mem["A"]), sink=events.append)
    first = loop.step(1)
    assert first["published"]
    assert first["feedback"] == 0
    assert first["difficulty"] == 0
    b = solver_channel(mem["B"])
    for r, reward in [(1, 0.0), (2, 1.0)]:
        got = b.fetch_problem(r)
        assert got.id == events[-1]["published"]
        assert got.source == "proposer"
        b.publish_feedback(r, got, [reward])
        summary = loop.step(r + 1)
    assert summary["difficulty"] == 1
    assert summary["mean_reward"] == 1.0
    assert len(events) == 3
    monkeypatch.setattr(prop, "propose", lambda r: None)
    loop.sink = lambda s: 1 / 0  # a failing sink is logged, not raised
    assert loop.step(4)["published"] is None


# --- real DHT peers ---------------------------------------------------------------------------


def until(fn, timeout=10.0):
    """Poll fn until it returns something truthy (DHT writes take a moment to be readable)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture(scope="module")
def swarm(identities):
    from desktop.swarm.dht import SwarmDHT

    peers = {}
    try:
        peers["A"] = SwarmDHT(identities["A"].path, startup_timeout=30)
        boot = peers["A"].visible_maddrs()
        for name in "BM":
            peers[name] = SwarmDHT(identities[name].path, initial_peers=boot, startup_timeout=30)
        yield peers
    finally:
        for dht in peers.values():
            dht.shutdown()


def _solver_finding(dht, timeout=10.0):
    directory = Directory(dht, dht.peer_id)
    assert until(lambda: directory.refresh() or directory.entries(role="proposer"), timeout)
    return SolverChannel(dht, dht.peer_id, directory)


@pytest.mark.slow
@pytest.mark.swarm
def test_dht_proposer_to_solver_and_back(swarm):
    a = proposer_channel(swarm["A"])
    sent = Proposer(seed=11, controller=DifficultyController(level=2)).propose(10)
    assert a.publish_problems(10, [sent]) == [sent.id]
    assert a.last_rejected == {}
    b = _solver_finding(swarm["B"])
    got = until(lambda: b.fetch_problem(10))
    assert (got.id, got.question, got.tests, got.entry_point, got.difficulty) == (
        sent.id, sent.question, sent.tests, sent.entry_point, 2)
    assert got.ref == ("proposer", swarm["A"].peer_id, 10, sent.id)
    assert b.last_rejected == {}
    assert b.publish_feedback(10, got, [1.0, -0.2])
    feedback = until(lambda: a.read_feedback(since_round=10))
    assert [(f.peer_id, f.problem_id, f.rewards) for f in feedback] == [
        (swarm["B"].peer_id, sent.id, [1.0, -0.2])]


@pytest.mark.slow
@pytest.mark.swarm
def test_dht_loop_raises_difficulty_when_solvers_improve(swarm):
    loop = ProposerLoop(Proposer(seed=5, controller=DifficultyController(every=2, window=2)),
                        proposer_channel(swarm["A"]))
    summaries = [loop.step(20)]
    b = _solver_finding(swarm["B"])

    def fetch_published(r):
        return until(lambda: (p := b.fetch_problem(r)) and p.id == summaries[-1]["published"] and p)

    for r, reward in zip(range(20, 24), [0.0, 0.0, 1.0, 1.0]):
        got = fetch_published(r)
        assert got, f"solver did not see round {r}'s problem"
        assert b.publish_feedback(r, got, [reward, reward])
        key = feedback_key(swarm["A"].peer_id, swarm["B"].peer_id)
        expected = encode_feedback(swarm["B"].peer_id, r, swarm["A"].peer_id, got.id, [reward, reward])
        assert until(lambda: swarm["A"].get(key).get(swarm["B"].subkey) == expected)
        summaries.append(loop.step(r + 1))
    assert [s["feedback"] for s in summaries] == [0, 1, 1, 1, 1]
    assert [s["difficulty"] for s in summaries] == [0, 0, 0, 0, 1]
    assert fetch_published(24).difficulty == 1


@pytest.mark.swarm
def test_dht_forged_and_garbage_records_are_refused(swarm):
    a = proposer_channel(swarm["A"])
    m = swarm["M"]
    honest = problem(1, level=3)
    assert a.publish_problems(30, [honest]) == ["p1"]
    b = _solver_finding(swarm["B"])
    expected = problem(1, level=3, proposer=swarm["A"].peer_id, round_=30)
    assert until(lambda: b.fetch_problem(30) == expected)
    # M signs correctly with its own key but claims to be A; then plain garbage; both refused
    # by every honest node, so nothing reaches the solver.
    forged = msgpack.unpackb(encode_problems(m.peer_id, 30, [problem(2)]))
    forged["peer_id"] = swarm["A"].peer_id
    assert not m.store(problems_key(swarm["A"].peer_id), m.subkey, msgpack.packb(forged), 60)
    assert not m.store(problems_key(m.peer_id), m.subkey, msgpack.packb(forged), 60)
    assert not m.store(problems_key(m.peer_id), m.subkey, b"\xff" * 64, 60)
    assert b.fetch_problem(30) == expected
    assert b.last_rejected == {}
    # Feedback M forges in B's name is refused too; B's real feedback still arrives.
    fake = encode_feedback(swarm["B"].peer_id, 30, swarm["A"].peer_id, "p1", [10.0])
    assert not m.store(feedback_key(swarm["A"].peer_id, swarm["B"].peer_id), m.subkey, fake, 60)
    assert b.publish_feedback(30, expected, [0.5])
    got = until(lambda: a.read_feedback(30))
    assert [(f.peer_id, f.rewards) for f in got] == [(swarm["B"].peer_id, [0.5])]
    assert a.last_rejected == {}
