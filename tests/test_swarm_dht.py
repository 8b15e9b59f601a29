"""Real hivemind DHT peers on 127.0.0.1 exchanging signed rollout records (schema v2).

One small swarm is shared by the module: honest peers A, B, C and a hostile peer M that runs
the same software but tries to store whatever it likes under its own (validly signed) subkey.
Every peer keeps only its latest record under its own key, so tests publish what they read.
"""

import threading
import time

import hivemind
import msgpack
import psutil
import pytest
from hivemind.utils import get_dht_time

from desktop.identity import create_identity
from desktop.swarm.directory import Directory
from desktop.swarm.dht import SwarmDHT, SwarmError
from desktop.swarm.exchange import DHTCommunication
from desktop.swarm.owner import publisher_peer_id
from desktop.swarm.records import (batch_id_of, bucket_of, encode_roster, encode_rollouts, make_item,
                                   rollouts_key, roster_key)

pytestmark = pytest.mark.swarm

START_S = 30.0


def items_for(name: str, round_number: int) -> list:
    question = f"{name} question {round_number}"
    return [make_item(("gen", 1, 0, round_number), question, [f"{name} answer 1", f"{name} answer 2"], [1.0, 0.0])]


def p2pd_under(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "p2pd" in p.name()]
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    root = tmp_path_factory.mktemp("swarm")
    peers = {}
    try:
        peers["A"] = SwarmDHT(create_identity(root / "a.pem").path, startup_timeout=START_S)
        boot = peers["A"].visible_maddrs()
        for name in "BCM":
            peers[name] = SwarmDHT(create_identity(root / f"{name}.pem").path,
                                   initial_peers=boot, startup_timeout=START_S)
        yield peers
    finally:
        for dht in peers.values():
            dht.shutdown()
    assert not p2pd_under(psutil.Process().pid), "p2pd left behind by the module's peers"


def comm(dht, **kw) -> DHTCommunication:
    kw.setdefault("gather_timeout", 5.0)
    kw.setdefault("poll_interval", 0.1)
    return DHTCommunication(dht, peer_id=dht.peer_id, model_name="test-model", close_dht=False, **kw)


def publish(dht, round_number: int, name: str) -> None:
    """An honest peer's record and roster entry, stored directly (as its own exchange would)."""
    comm(dht).publish(round_number, 0, items_for(name, round_number))


def record_bytes(peer_id: str, round_number: int, **overrides) -> bytes:
    record = {"v": 2, "kind": "rollouts", "peer_id": peer_id, "round": round_number, "stage": 0, "model": "m",
              "items": [{"ref": ["gen", 1, 0, 1], "batch_id": batch_id_of("q"), "completions": ["c"], "rewards": []}]}
    record.update(overrides)
    return msgpack.packb(record, use_bin_type=True)


def by_peer(gathered) -> dict:
    out = {}
    for r in gathered.rollouts:
        out.setdefault(r.peer_id, []).append(r)
    return out


# --- identity, signing and what honest nodes store ------------------------------------------

@pytest.mark.slow
def test_signing_key_is_the_libp2p_identity(swarm):
    for dht in swarm.values():
        assert publisher_peer_id(dht.subkey) == dht.peer_id
        addrs = dht.visible_maddrs()
        assert addrs
        assert all(a.endswith(f"/p2p/{dht.peer_id}") for a in addrs)


def test_store_under_another_peers_subkey_is_refused(swarm):
    key = rollouts_key(swarm["B"].peer_id)
    assert not swarm["M"].store(key, swarm["B"].subkey, record_bytes(swarm["B"].peer_id, 900), 60)


def test_plain_value_cannot_replace_a_key(swarm):
    future = swarm["M"]._dht.store(rollouts_key(swarm["B"].peer_id), b"plain", get_dht_time() + 600,
                                   return_future=True)
    assert future.result(10) is False


M_JUNK = {
    "foreign record under its own key": lambda m, b: (rollouts_key(m.peer_id), m.subkey, record_bytes(b.peer_id, 1)),
    "own record under another's key": lambda m, b: (rollouts_key(b.peer_id), m.subkey, record_bytes(m.peer_id, 1)),
    "not msgpack": lambda m, b: (rollouts_key(m.peer_id), m.subkey, b"\xc1\xc1 not msgpack"),
    "a map with int keys": lambda m, b: (rollouts_key(m.peer_id), m.subkey, msgpack.packb({1: 2})),
    "bad utf-8": lambda m, b: (rollouts_key(m.peer_id), m.subkey, b"\x81\xa3\xff\xfe\xfd\x01"),
    "deep nesting": lambda m, b: (rollouts_key(m.peer_id), m.subkey, b"\x91" * 2000 + b"\x01"),
    "oversized": lambda m, b: (rollouts_key(m.peer_id), m.subkey, b"\x00" * (300 * 1024)),
    "wrong schema": lambda m, b: (rollouts_key(m.peer_id), m.subkey, record_bytes(m.peer_id, 1, v=1)),
    "extra subkey": lambda m, b: (rollouts_key(m.peer_id), m.subkey + b"#1", record_bytes(m.peer_id, 1)),
    "roster in another bucket": lambda m, b: (roster_key((bucket_of(m.peer_id) + 1) % 16), m.subkey,
                                              encode_roster(m.peer_id, 1, "solver", int(time.time()))),
    "the old shared round key": lambda m, b: ("rollouts/1/0", m.subkey, record_bytes(m.peer_id, 1)),
    "clock key": lambda m, b: ("clock", m.subkey, b"junk"),
}


@pytest.mark.parametrize("case", sorted(M_JUNK))
def test_honest_nodes_refuse_to_store_junk(swarm, case):
    key, subkey, value = M_JUNK[case](swarm["M"], swarm["B"])
    assert swarm["M"].store(key, subkey, value, 60) is False
    assert value not in swarm["A"].get(key).values()


def test_tuple_and_list_subkeys_are_refused(swarm):
    key = rollouts_key(swarm["M"].peer_id)
    for subkey in ((swarm["M"].subkey, 1), (1, 2), [swarm["M"].subkey]):
        future = swarm["M"]._dht.store(key, record_bytes(swarm["M"].peer_id, 1), get_dht_time() + 60,
                                       subkey=subkey, return_future=True)
        try:
            assert future.result(10) is False
        except TypeError:  # hivemind's own client cannot even send a list subkey
            pass
    assert all(isinstance(k, bytes) for k in swarm["A"].get(key))


@pytest.mark.slow
def test_unvalidating_attacker_cannot_forge_a_peer_or_slow_reads(swarm):
    """A modified client (no validators) stores forged, junk and plain values: honest peers refuse
    them all, readers see only the genuine record, and a read does not wait out any timeout."""
    attacker = hivemind.DHT(initial_peers=swarm["A"].visible_maddrs(), start=True,
                            host_maddrs=["/ip4/127.0.0.1/tcp/0"], startup_timeout=START_S)
    try:
        publish(swarm["C"], 902, "C")
        key = rollouts_key(swarm["C"].peer_id)
        # (below ~64 KiB: a plain hivemind client's own DHT process dies on bigger commands)
        stores = []
        for value in (record_bytes(swarm["B"].peer_id, 902), {1: 2}, b"\xc1junk", b"x" * 50_000):
            stores.append(attacker.store(key, value, get_dht_time() + 600, subkey=swarm["C"].subkey,
                                         return_future=True))
            stores.append(attacker.store(key, value, get_dht_time() + 600, subkey=b"[owner:ssh-rsa AAAA]",
                                         return_future=True))
        stores.append(attacker.store(key, b"plain", get_dht_time() + 600, return_future=True))
        for future in stores:
            future.result(30)
        for reader in ("A", "B"):
            started = time.monotonic()
            assert set(swarm[reader].get(key)) == {swarm["C"].subkey}
            assert time.monotonic() - started < 3.0
    finally:
        attacker.shutdown()


def test_large_values_survive_the_command_pipe(swarm):
    """Regression: hivemind's DHT process died on commands over the ~64 KiB pipe buffer."""
    for i in range(3):
        big = make_item(("gen", 1, 0, i), f"q{i}", ["c" * 15_000] * 15)
        data = encode_rollouts(swarm["M"].peer_id, 5, 0, "m", [big])
        assert len(data) > 200_000
        assert swarm["M"].store(rollouts_key(swarm["M"].peer_id), swarm["M"].subkey, data, 60)
        assert swarm["A"].get(rollouts_key(swarm["M"].peer_id)) == {swarm["M"].subkey: data}


def test_peer_id_must_match_the_dht(swarm):
    with pytest.raises(ValueError):
        DHTCommunication(swarm["A"], peer_id=swarm["B"].peer_id, model_name="m")


# --- exchange ---------------------------------------------------------------------------

def test_three_peers_exchange_and_exit_early(swarm):
    comms = {n: comm(swarm[n], expected_peers=2, gather_timeout=15.0) for n in "ABC"}
    results, errors = {}, []

    def run(name):
        try:
            results[name] = comms[name].exchange(10, 0, items_for(name, 10))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in "ABC"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    for name, c in comms.items():
        got = by_peer(results[name])
        others = {swarm[o].peer_id for o in "ABC" if o != name}
        assert set(got) == others  # M's latest record (an old round) is outside the window
        for other in "ABC":
            if other != name:
                (item,) = got[swarm[other].peer_id]
                assert item.ref == ("gen", 1, 0, 10)
                assert item.round == 10
                assert item.completions == [f"{other} answer 1", f"{other} answer 2"]
                assert item.batch_id == batch_id_of(f"{other} question 10")
                assert item.rewards == [1.0, 0.0]
        assert c.last_gather_seconds < 5.0  # early exit, far below the 15 s deadline


@pytest.mark.slow
def test_no_barrier_without_expected_peers(swarm):
    """SAPO's asynchrony: a reader waits the short grace for peers of its round, then takes
    what is there; a silent peer costs it the grace, never the timeout."""
    publish(swarm["B"], 20, "B")
    publish(swarm["C"], 19, "C")  # C is a round behind (slower)
    a = comm(swarm["A"], expected_peers=None, gather_grace=1.0, gather_timeout=30.0)
    started = time.monotonic()
    got = by_peer(a.exchange(20, 0, items_for("A", 20)))
    assert time.monotonic() - started < 4.0
    assert {swarm["B"].peer_id, swarm["C"].peer_id} <= set(got)
    assert got[swarm["C"].peer_id][0].round == 19


@pytest.mark.slow
def test_each_peer_round_is_handed_out_once(swarm):
    publish(swarm["B"], 30, "B")
    a = comm(swarm["A"], gather_grace=0.3)
    assert swarm["B"].peer_id in by_peer(a.gather(30, 0))
    assert swarm["B"].peer_id not in by_peer(a.gather(31, 0))  # B is still on round 30: nothing new
    publish(swarm["B"], 31, "B")
    assert swarm["B"].peer_id in by_peer(a.gather(31, 0))


@pytest.mark.slow
def test_a_peer_ahead_is_waited_for_not_skipped(swarm):
    """B runs a round ahead: A saw B's round-71 record during its round 70, so in round 71 it
    waits for B's next record instead of counting the old one and training on nothing new."""
    only_b = lambda peers: {p for p in peers if p == swarm["B"].peer_id}  # noqa: E731
    a = comm(swarm["A"], expected_peers=1, gather_timeout=10.0,
             directory=Directory(swarm["A"], swarm["A"].peer_id, accept=only_b))
    publish(swarm["B"], 71, "B")
    assert [r.round for r in a.gather(70, 0).rollouts] == [71]
    later = threading.Timer(1.0, publish, args=(swarm["B"], 72, "B"))
    later.start()
    try:
        got = a.gather(71, 0)
    finally:
        later.join()
    assert [r.round for r in got.rollouts] == [72]
    assert a.last_gather_seconds < 8.0


@pytest.mark.slow
def test_a_stopping_node_stops_waiting_for_peers(swarm):
    """Quitting while the node waits for a peer that never comes: the wait ends at the stop,
    not at the gather timeout (the app's Quit and a SIGTERM would otherwise hang that long)."""
    stop = threading.Event()
    nobody = lambda peers: set()  # noqa: E731 - no peer is ever accepted: only the timeout ends it
    a = comm(swarm["A"], expected_peers=2, gather_timeout=30.0, stop=stop,
             directory=Directory(swarm["A"], swarm["A"].peer_id, accept=nobody))
    later = threading.Timer(1.0, stop.set)
    later.start()
    started = time.monotonic()
    try:
        assert a.gather(80, 0).rollouts == []
    finally:
        later.join()
    assert time.monotonic() - started < 15.0


def test_records_outside_the_window_are_refused_and_counted(swarm):
    publish(swarm["B"], 40, "B")
    a = comm(swarm["A"], gather_grace=0.3, round_window=2)
    gathered = a.gather(50, 0)
    got = by_peer(gathered)
    assert swarm["B"].peer_id not in got
    assert gathered.rejected.get("stale_round", 0) >= 1


@pytest.mark.slow
def test_only_accepted_peers_are_read(swarm):
    """On a chain only registered peers count: a stranger's record is never even fetched."""
    publish(swarm["B"], 60, "B")
    publish(swarm["M"], 60, "M")
    accept = lambda peers: {p for p in peers if p != swarm["M"].peer_id}  # noqa: E731
    a = comm(swarm["A"], gather_grace=0.5, directory=Directory(swarm["A"], swarm["A"].peer_id, accept=accept))
    gathered = a.gather(60, 0)
    got = by_peer(gathered)
    assert swarm["B"].peer_id in got
    assert swarm["M"].peer_id not in got
    assert gathered.rejected.get("unregistered", 0) >= 1


def test_reads_are_bounded_by_the_sample(swarm):
    for name in "BCM":
        publish(swarm[name], 70, name)
    a = comm(swarm["A"], gather_grace=0.5, sample_peers=1)
    got = by_peer(a.gather(70, 0))
    assert len(got) == 1
    assert a.last_read["keys"] <= 3  # one peer's key, polled at most a few times


def test_dht_errors_do_not_raise(swarm):
    class Broken:
        peer_id, subkey = swarm["A"].peer_id, swarm["A"].subkey

        def store(self, *a, **k):
            raise SwarmError("down")

        def get_many(self, *a, **k):
            raise SwarmError("down")

    c = DHTCommunication(Broken(), peer_id=Broken.peer_id, model_name="m", gather_timeout=0.3,
                         poll_interval=0.1, close_dht=False)
    gathered = c.exchange(60, 0, items_for("A", 60))
    assert gathered.rollouts == [] and gathered.rejected["dht_error"] >= 2


# --- lifecycle ---------------------------------------------------------------------------

@pytest.mark.slow
def test_shutdown_leaves_no_p2pd(tmp_path):
    dht = SwarmDHT(create_identity(tmp_path / "x.pem").path, startup_timeout=START_S)
    daemons = p2pd_under(dht._dht.pid)
    assert daemons
    dht.shutdown()
    dht.shutdown()  # idempotent
    assert not any(p.is_running() for p in daemons)
    assert not dht._dht.is_alive()
    with pytest.raises(SwarmError):
        dht.get("anything")


def test_identity_already_taken(swarm):
    before = {p.pid for p in p2pd_under(psutil.Process().pid)}
    with pytest.raises(SwarmError, match="already uses this identity"):
        SwarmDHT(swarm["B"].identity_path, initial_peers=swarm["A"].visible_maddrs(),
                 startup_timeout=START_S)
    assert {p.pid for p in p2pd_under(psutil.Process().pid)} == before


@pytest.mark.slow
def test_unreachable_initial_peers(tmp_path, swarm):
    before = {p.pid for p in p2pd_under(psutil.Process().pid)}
    nobody = create_identity(tmp_path / "nobody.pem").peer_id
    with pytest.raises(SwarmError, match="initial peer"):
        SwarmDHT(create_identity(tmp_path / "y.pem").path, startup_timeout=5.0,
                 initial_peers=[f"/ip4/127.0.0.1/tcp/9/p2p/{nobody}"])
    assert {p.pid for p in p2pd_under(psutil.Process().pid)} == before


def test_missing_identity_file(tmp_path):
    with pytest.raises(SwarmError, match="does not exist"):
        SwarmDHT(tmp_path / "missing.pem")
