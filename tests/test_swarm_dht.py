"""Real hivemind DHT peers on 127.0.0.1 exchanging signed rollout records.

One small swarm is shared by the module: honest peers A, B, C and a hostile peer M that runs
the same software but stores whatever it likes under its own (validly signed) subkey. Each
test uses its own round numbers so the tests don't see each other's records.
"""

import threading
import time
from dataclasses import dataclass

import hivemind
import msgpack
import psutil
import pytest
from hivemind.utils import get_dht_time

from desktop.identity import create_identity
from desktop.swarm.dht import SwarmDHT, SwarmError, publisher_peer_id
from desktop.swarm.exchange import DHTCommunication, rollout_key
from desktop.swarm.records import batch_id_of, encode_rollouts, make_item

pytestmark = pytest.mark.swarm

START_S = 30.0


@dataclass
class FakeGroup:  # the two fields of desktop.node.grpo.Group that the exchange reads
    prompt: str
    texts: list


def groups_for(name: str, round_number: int) -> list:
    return [FakeGroup(f"{name} question {round_number}", [f"{name} answer 1", f"{name} answer 2"])]


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
    return DHTCommunication(dht, peer_id=dht.peer_id, model_name="test-model", close_dht=False,
                            **kw)


def publish(dht, round_number: int, name: str, stage: int = 0) -> None:
    """An honest peer's record, stored directly (as its own exchange would)."""
    items = [make_item(g.prompt, g.texts) for g in groups_for(name, round_number)]
    data = encode_rollouts(dht.peer_id, round_number, stage, "test-model", items)
    assert dht.store(rollout_key(round_number, stage), dht.subkey, data, 60)


def hostile(dht, round_number: int, value, stage: int = 0) -> None:
    """M stores raw bytes under its own valid subkey: the signature passes, the content not."""
    assert dht.store(rollout_key(round_number, stage), dht.subkey, value, 60)


def record_bytes(peer_id: str, round_number: int, stage: int = 0, **overrides) -> bytes:
    record = {"v": 1, "peer_id": peer_id, "round": round_number, "stage": stage, "model": "m",
              "items": [{"question": "q", "batch_id": batch_id_of("q"), "completions": ["c"],
                         "rewards": []}]}
    record.update(overrides)
    return msgpack.packb(record, use_bin_type=True)


def by_peer(rollouts) -> dict:
    out = {}
    for r in rollouts:
        out.setdefault(r.peer_id, []).append(r)
    return out


# --- identity and signing ---------------------------------------------------------------

def test_signing_key_is_the_libp2p_identity(swarm):
    for dht in swarm.values():
        assert publisher_peer_id(dht.subkey) == dht.peer_id
        addrs = dht.visible_maddrs()
        assert addrs and all(a.endswith(f"/p2p/{dht.peer_id}") for a in addrs)


def test_store_under_another_peers_subkey_is_refused(swarm):
    key = rollout_key(900, 0)
    assert not swarm["M"].store(key, swarm["B"].subkey, record_bytes(swarm["B"].peer_id, 900), 60)
    assert swarm["B"].get(key) == {}


def test_plain_value_cannot_replace_the_shared_key(swarm):
    publish(swarm["B"], 901, "B")
    future = swarm["M"]._dht.store(rollout_key(901, 0), b"plain", get_dht_time() + 600,
                                   return_future=True)
    assert future.result(10) is False
    assert list(swarm["A"].get(rollout_key(901, 0))) == [swarm["B"].subkey]


def test_unvalidating_attacker_cannot_forge_a_peer(swarm):
    """A modified client (no validators) stores an unsigned record under B's subkey and a
    plain value: honest peers refuse both, and readers never see them."""
    attacker = hivemind.DHT(initial_peers=swarm["A"].visible_maddrs(), start=True,
                            host_maddrs=["/ip4/127.0.0.1/tcp/0"], startup_timeout=START_S)
    try:
        key = rollout_key(902, 0)
        publish(swarm["C"], 902, "C")
        attacker.store(key, record_bytes(swarm["B"].peer_id, 902), get_dht_time() + 600,
                       subkey=swarm["B"].subkey)
        attacker.store(key, b"plain", get_dht_time() + 600)
        for reader in ("A", "B"):
            assert set(swarm[reader].get(key)) == {swarm["C"].subkey}
    finally:
        attacker.shutdown()


def test_large_values_survive_the_command_pipe(swarm):
    """Regression: hivemind's DHT process died on commands over the ~64 KiB pipe buffer."""
    for i in range(6):
        value = bytes([i]) * (250 * 1024)
        assert swarm["M"].store(f"big/{i}", swarm["M"].subkey, value, 60)
        assert swarm["A"].get(f"big/{i}") == {swarm["M"].subkey: value}


def test_peer_id_must_match_the_dht(swarm):
    with pytest.raises(ValueError):
        DHTCommunication(swarm["A"], peer_id=swarm["B"].peer_id, model_name="m")


# --- exchange ---------------------------------------------------------------------------

def test_three_peers_exchange_and_exit_early(swarm):
    comms = {n: comm(swarm[n], expected_peers=2, gather_timeout=15.0) for n in "ABC"}
    results, errors = {}, []

    def run(name):
        try:
            results[name] = comms[name].exchange(10, 0, groups_for(name, 10))
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
        assert set(got) == others
        for other in "ABC":
            if other != name:
                (item,) = got[swarm[other].peer_id]
                assert item.question == f"{other} question 10"
                assert item.completions == [f"{other} answer 1", f"{other} answer 2"]
                assert item.batch_id == batch_id_of(item.question) and item.rewards == []
        assert c.last_rejected == {}
        assert c.peers_seen == others
        assert c.last_gather_seconds < 5.0  # early exit, far below the 15 s deadline
        print(f"\n{name}: store {c.last_store_seconds * 1000:.0f} ms, "
              f"gather {c.last_gather_seconds * 1000:.0f} ms")


def test_early_exit_when_expected_peers_are_in(swarm):
    publish(swarm["B"], 11, "B")
    publish(swarm["C"], 11, "C")
    a = comm(swarm["A"], expected_peers=2, gather_timeout=20.0)
    started = time.monotonic()
    got = by_peer(a.exchange(11, 0, groups_for("A", 11)))
    assert time.monotonic() - started < 3.0
    assert set(got) == {swarm["B"].peer_id, swarm["C"].peer_id}


def test_deadline_returns_what_arrived(swarm):
    publish(swarm["B"], 12, "B")
    a = comm(swarm["A"], expected_peers=3, gather_timeout=2.0)  # M never publishes
    started = time.monotonic()
    got = by_peer(a.exchange(12, 0, groups_for("A", 12)))
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 5.0
    assert 1.9 <= a.last_gather_seconds < 4.0
    assert set(got) == {swarm["B"].peer_id}


def test_without_expected_peers_waits_for_recent_publishers(swarm):
    a = comm(swarm["A"], expected_peers=None, gather_timeout=2.0)
    publish(swarm["B"], 20, "B")
    publish(swarm["C"], 20, "C")
    started = time.monotonic()
    assert len(a.exchange(20, 0, [])) == 2  # no history: one poll, no waiting
    assert time.monotonic() - started < 1.5
    publish(swarm["B"], 21, "B")  # C has dropped out: A waits for it until the deadline
    got = by_peer(a.exchange(21, 0, []))
    assert set(got) == {swarm["B"].peer_id} and a.last_gather_seconds >= 1.9
    publish(swarm["B"], 22, "B")
    publish(swarm["C"], 22, "C")  # both back: early exit again
    started = time.monotonic()
    assert len(a.exchange(22, 0, [])) == 2
    assert time.monotonic() - started < 1.5


def test_forged_publisher_is_refused(swarm):
    publish(swarm["B"], 30, "B")
    publish(swarm["C"], 30, "C")
    hostile(swarm["M"], 30, record_bytes(swarm["B"].peer_id, 30))  # M claims to be B
    a = comm(swarm["A"], expected_peers=2, gather_timeout=5.0)
    got = by_peer(a.exchange(30, 0, groups_for("A", 30)))
    assert a.last_rejected == {"forged_publisher": 1}
    assert set(got) == {swarm["B"].peer_id, swarm["C"].peer_id}
    assert [r.question for r in got[swarm["B"].peer_id]] == ["B question 30"]


@pytest.mark.parametrize("round_number, payload, reason", [
    (40, lambda pid: b"\x00" * (300 * 1024), "oversized"),
    (41, lambda pid: record_bytes(pid, 41, v=2), "schema"),
    (42, lambda pid: b"\xc1\xc1 not msgpack", "garbage"),
    (43, lambda pid: record_bytes(pid, 43, items=[{"question": "q", "batch_id": "0" * 32,
                                                   "completions": ["c"], "rewards": []}]),
     "batch_id"),
    (44, lambda pid: record_bytes(pid, 40), "stale_round"),
    (45, lambda pid: record_bytes(pid, 46), "future_round"),
])
def test_bad_records_are_counted_and_honest_ones_arrive(swarm, round_number, payload, reason):
    publish(swarm["B"], round_number, "B")
    publish(swarm["C"], round_number, "C")
    hostile(swarm["M"], round_number, payload(swarm["M"].peer_id))
    # Everything is stored before A looks, so A's first poll sees all three records.
    a = comm(swarm["A"], expected_peers=2, gather_timeout=5.0)
    got = by_peer(a.exchange(round_number, 0, groups_for("A", round_number)))
    assert a.last_rejected == {reason: 1}
    assert set(got) == {swarm["B"].peer_id, swarm["C"].peer_id}
    assert swarm["M"].peer_id not in a.peers_seen


def test_lagging_peer_within_window_is_accepted(swarm):
    hostile(swarm["M"], 50, record_bytes(swarm["M"].peer_id, 49))  # one round behind: fine
    a = comm(swarm["A"], expected_peers=1, gather_timeout=2.0)
    got = by_peer(a.exchange(50, 0, []))
    assert set(got) == {swarm["M"].peer_id} and a.last_rejected == {}


def test_dht_errors_do_not_raise(swarm):
    class Broken:
        peer_id, subkey = swarm["A"].peer_id, swarm["A"].subkey

        def store(self, *a, **k):
            raise SwarmError("down")

        def get(self, *a, **k):
            raise SwarmError("down")

    c = DHTCommunication(Broken(), peer_id=Broken.peer_id, model_name="m", gather_timeout=0.3,
                         poll_interval=0.1, close_dht=False)
    assert c.exchange(60, 0, groups_for("A", 60)) == []
    assert c.last_rejected["dht_error"] >= 2


# --- lifecycle ---------------------------------------------------------------------------

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
