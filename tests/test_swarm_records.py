"""The swarm's record schema (v2): round trip, every refusal reason, the home keys, and fuzzing."""

import math
import random

import msgpack
import pytest

from desktop.swarm.homes import home_key
from desktop.swarm.records import (MAX_COMPLETION_CHARS, MAX_ITEMS, MAX_RECORD_BYTES, REASONS, ROSTER_BUCKETS,
                                   RecordError, RolloutItem, batch_id_of, bucket_of, decode_roster,
                                   decode_rollouts, encode_roster, encode_rollouts, fit_items,
                                   make_item, rollouts_key, roster_key)

PEER = "QmRJqhA1eRZsQM99tdaU7uSG9jsRiY1qQeRXLrM31STAZN"
OTHER = "QmbfezfUT8ZMjpCBFNXBXHnAHU1G2TMF49uWUNSycAQhBC"
REF = ["gen", 1, 0, 12345]


def good_record(**overrides):
    record = {"v": 2, "kind": "rollouts", "peer_id": PEER, "round": 7, "stage": 0, "model": "Qwen/Qwen2.5-Coder",
              "items": [{"ref": list(REF), "batch_id": batch_id_of("Add two numbers."),
                         "completions": ["def add(a, b): return a + b", "x"],
                         "rewards": [1.0, -1.2]}]}
    record.update(overrides)
    return record


def item_with(**overrides):
    item = dict(good_record()["items"][0])
    item.update(overrides)
    return good_record(items=[item])


def decode(obj_or_bytes, *, round_=7, window=2, peer=None):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else msgpack.packb(obj_or_bytes)
    return decode_rollouts(data, expected_round=round_, round_window=window, expected_peer_id=peer)


def reason_of(obj_or_bytes, **kw):
    with pytest.raises(RecordError) as info:
        decode(obj_or_bytes, **kw)
    assert info.value.reason in REASONS
    return info.value.reason


def test_round_trip():
    items = [make_item(("gen", 1, 2, 9), "Q1", ["a", "b"], [0.5, -0.2]),
             make_item(("humaneval", "HumanEval/3"), "Q2 ünïcode ✓", ["c"])]
    data = encode_rollouts(PEER, 3, 1, "m", items)
    rec = decode_rollouts(data, expected_round=3, round_window=2, expected_peer_id=PEER)
    assert (rec.peer_id, rec.round, rec.stage, rec.model) == (PEER, 3, 1, "m")
    assert rec.items == items
    assert rec.items[1].rewards == []
    assert rec.items[0].batch_id == batch_id_of("Q1")
    assert rec.items[0].ref == ("gen", 1, 2, 9)


def test_records_name_no_problem_text_only_a_reference():
    data = encode_rollouts(PEER, 0, 0, "m", [make_item(("gen", 1, 0, 5), "the secret question", ["a"])])
    assert b"secret question" not in data


def test_empty_items_and_nearby_rounds_are_accepted():
    assert decode(good_record(items=[])).items == []
    assert decode(good_record(round=5)).round == 5  # within the 2-round window
    assert decode(good_record(round=9)).round == 9  # a faster peer: no barrier keeps peers in step


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xff" * 50, b"\x81\xa1"])
def test_garbage(data):
    assert reason_of(data) == "garbage"


def test_non_bytes_value_is_garbage():
    with pytest.raises(RecordError) as info:
        decode_rollouts({"v": 2})
    assert info.value.reason == "garbage"


@pytest.mark.parametrize("record", [
    [1, 2, 3],
    good_record(v=1),
    good_record(v=True),
    good_record(kind="roster"),
    good_record(extra=1),
    {k: v for k, v in good_record().items() if k != "model"},
    good_record(round=True),
    good_record(round=-1),
    good_record(round=7.0),
    good_record(stage=-1),
    good_record(peer_id="not-a-peer-id"),
    good_record(peer_id=b"bytes"),
    good_record(items={"a": 1}),
    item_with(rewards=[1, 0]),          # ints, not floats
    item_with(rewards=[True, False]),
    item_with(rewards=[math.nan, 0.0]),
    item_with(rewards=[math.inf, 0.0]),
    item_with(rewards=[10.5, 0.0]),
    item_with(rewards=[1.0]),           # count does not match completions
    item_with(completions=[]),
    item_with(completions=["a", 3]),
    item_with(ref=None),
    item_with(ref=["gen", 1, 0]),       # a field missing
    item_with(ref=["gen", 1, 0, -5]),
    item_with(ref=["gen", 1, 0, True]),
    item_with(ref=["nope", "x"]),
    item_with(ref=["humaneval", 12]),
    good_record(items=[good_record()["items"][0]] * 2),  # duplicate question
])
def test_schema(record):
    assert reason_of(record) == "schema"


def test_binary_and_ext_types_are_schema_errors():
    assert reason_of(msgpack.packb(good_record(model=b"bin"), use_bin_type=True)) == "schema"
    assert reason_of(msgpack.packb(good_record(model=msgpack.ExtType(3, b"x")))) == "schema"
    missing_item_key = good_record()
    del missing_item_key["items"][0]["rewards"]
    assert reason_of(missing_item_key) == "schema"


def test_oversized():
    assert reason_of(b"\x00" * (MAX_RECORD_BYTES + 1)) == "oversized"
    assert reason_of(item_with(completions=["x" * (MAX_COMPLETION_CHARS + 1)])) == "oversized"
    assert reason_of(item_with(ref=["humaneval", "h" * 300])) == "oversized"
    assert reason_of(item_with(completions=["a"] * 17, rewards=[])) == "oversized"
    many = [{"ref": ["gen", 1, 0, i], "batch_id": batch_id_of(f"q{i}"), "completions": ["a"],
             "rewards": []} for i in range(MAX_ITEMS + 1)]
    assert reason_of(good_record(items=many)) == "oversized"
    assert reason_of(good_record(model="m" * 300)) == "oversized"


def test_batch_id_must_look_like_md5():
    assert reason_of(item_with(batch_id="0" * 31)) == "batch_id"
    assert reason_of(item_with(batch_id=5)) == "batch_id"


def test_rounds():
    assert reason_of(good_record(round=10)) == "future_round"
    assert reason_of(good_record(round=4)) == "stale_round"
    assert reason_of(good_record(round=6), window=0) == "stale_round"


def test_forged_publisher():
    assert decode(good_record(), peer=PEER).peer_id == PEER
    assert reason_of(good_record(), peer=OTHER) == "forged_publisher"


def test_fit_items_makes_an_acceptable_record():
    huge = [RolloutItem(("gen", 1, 0, i), batch_id_of(f"q{i}"), ["c" * 40_000] * 20, [99.0] * 20) for i in range(12)]
    items = fit_items(huge)
    assert 1 <= len(items) <= MAX_ITEMS
    data = encode_rollouts(PEER, 0, 0, "m", items)
    assert len(data) <= MAX_RECORD_BYTES
    assert all(r == 10.0 for it in items for r in it.rewards)
    assert fit_items([RolloutItem(("gen", 1, 0, 1), batch_id_of("q"), ["\ud800 lone surrogate"], [])])[0].completions


def test_encode_refuses_what_peers_would_refuse():
    with pytest.raises(RecordError):
        encode_rollouts(PEER, 0, 0, "m", [RolloutItem(("gen", 1, 0, 1), "bad", ["a"], [])])


def test_roster_round_trip_and_refusals():
    entry = decode_roster(encode_roster(PEER, 4, "proposer", 1_700_000_000), expected_peer_id=PEER)
    assert (entry.peer_id, entry.round, entry.role, entry.at) == (PEER, 4, "proposer", 1_700_000_000)
    for bad in ({"role": "king"}, {"at": -1}, {"at": True}, {"kind": "rollouts"}):
        obj = {"v": 2, "kind": "roster", "peer_id": PEER, "round": 1, "role": "solver", "at": 5, **bad}
        with pytest.raises(RecordError):
            decode_roster(msgpack.packb(obj))
    with pytest.raises(RecordError) as info:
        decode_roster(encode_roster(PEER, 4, "solver", 5), expected_peer_id=OTHER)
    assert info.value.reason == "forged_publisher"


def test_every_record_has_one_home_key():
    assert home_key(encode_rollouts(PEER, 1, 0, "m", [])) == (rollouts_key(PEER), PEER)
    assert home_key(encode_roster(OTHER, 1, "solver", 5)) == (roster_key(bucket_of(OTHER)), OTHER)
    assert 0 <= bucket_of(PEER) < ROSTER_BUCKETS
    with pytest.raises(RecordError):
        home_key(msgpack.packb({"v": 2, "kind": "anything", "peer_id": PEER}))
    with pytest.raises(RecordError):
        home_key(msgpack.packb({1: 2}))


# --- fuzzing ------------------------------------------------------------------------------

def _random_obj(rng: random.Random, depth: int = 0):
    kinds = ["int", "neg", "float", "str", "bytes", "bool", "none", "list", "dict", "big"]
    if depth > 3:
        kinds = kinds[:7]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(0, 2**64 - 1)
    if kind == "neg":
        return rng.randint(-2**63, -1)
    if kind == "float":
        return rng.choice([rng.uniform(-1e9, 1e9), math.nan, math.inf, -0.0])
    if kind == "str":
        return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 20)))
    if kind == "bytes":
        return rng.randbytes(rng.randint(0, 20))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_obj(rng, depth + 1) for _ in range(rng.randint(0, 20))]
    if kind == "dict":
        return {rng.choice(["v", "items", "round", "x", "question"]) + str(rng.randint(0, 3)):
                _random_obj(rng, depth + 1) for _ in range(rng.randint(0, 8))}
    return "x" * rng.randint(0, 300_000)


def _mutate_good(rng: random.Random) -> bytes:
    record = good_record()
    target = record if rng.random() < 0.5 else record["items"][0]
    target[rng.choice(sorted(target))] = _random_obj(rng)
    data = bytearray(msgpack.packb(record, use_bin_type=True))
    for _ in range(rng.randint(0, 3)):  # flip a few bytes: truncations, bad lengths, bad utf-8
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.2:
        data = data[:rng.randrange(len(data))]
    return bytes(data)


def test_fuzz_only_record_errors():
    rng = random.Random(1234)
    outcomes = {"ok": 0}
    for case in range(2000):
        choice = case % 3
        if choice == 0:
            data = rng.randbytes(rng.randint(0, 400))
        elif choice == 1:
            data = msgpack.packb(_random_obj(rng), use_bin_type=rng.random() < 0.5)
        else:
            data = _mutate_good(rng)
        try:
            decode(data)
            outcomes["ok"] += 1
        except RecordError as exc:
            assert exc.reason in REASONS
            outcomes[exc.reason] = outcomes.get(exc.reason, 0) + 1
    # The mutations should reach deep checks, not only the outer parser.
    assert outcomes.get("garbage")
    assert outcomes.get("schema")
    assert len(outcomes) >= 4, outcomes


# --- v3: what a completion's publisher sampled (stopped, token ids, log-probs) ------------------------

def v3_item(**overrides):
    item = {"ref": list(REF), "batch_id": batch_id_of("Add two numbers."), "completions": ["a", "bc"],
            "rewards": [1.0, 0.0], "stopped": [True, False], "tokens": [[5, 2], [7, 8, 9]],
            "logps": [[120, 0], [1, 2, 100_000]]}
    item.update(overrides)
    return good_record(v=3, items=[item])


def test_v3_carries_stopped_tokens_and_log_probs_and_v2_is_still_read():
    item = make_item(("gen", 1, 2, 9), "Q1", ["a", "b"], [0.5, -0.2], stopped=[True, False], tokens=[[3, 4], [5]],
                     logps=[[-0.1234, -2.0], [-0.0004]])
    rec = decode_rollouts(encode_rollouts(PEER, 3, 0, "m", [item]))
    got = rec.items[0]
    assert got.stopped == [True, False] and got.tokens == [[3, 4], [5]]
    assert got.logps == [pytest.approx([-0.123, -2.0]), pytest.approx([0.0])]  # milli-nat precision
    old = decode(good_record())  # a peer that still writes v2: text only
    assert old.items[0].tokens == [] and old.items[0].stopped == []
    assert decode(v3_item(stopped=[], tokens=[], logps=[])).items[0].tokens == []  # v3 without them


@pytest.mark.parametrize("overrides", [
    dict(stopped=[True]), dict(stopped=[1, 0]), dict(tokens=[[5, 2]], logps=[[1, 2]]),
    dict(tokens=[[5, 2], []], logps=[[1, 2], []]), dict(logps=[[1, 2], [1, 2]]),
    dict(tokens=[[5, -1], [7, 8, 9]]), dict(tokens=[[5, 2**40], [7, 8, 9]]), dict(tokens=[[5, 2.0], [7, 8, 9]]),
    dict(logps=[[-1, 0], [1, 2, 3]]), dict(logps=[[100_001, 0], [1, 2, 3]]), dict(logps=[[0.5, 0], [1, 2, 3]]),
    dict(tokens=[[True, 2], [7, 8, 9]]),
])
def test_v3_fields_are_checked_like_every_other(overrides):
    assert reason_of(v3_item(**overrides)) == "schema"
    assert reason_of(good_record(items=[{k: v for k, v in v3_item()["items"][0].items()}])) == "schema"  # v2 + v3 keys


def test_a_too_long_token_list_is_refused_before_it_is_built():
    assert reason_of(v3_item(tokens=[[1] * 5000, [7, 8, 9]], logps=[[1] * 5000, [1, 2, 3]])) == "oversized"


def test_fitting_drops_tokens_before_it_cuts_any_text():
    completions = ["x" * 1500] * 16
    tokens = [list(range(3000))] * 16
    items = [make_item(("gen", 1, 0, i), f"q{i}", completions, [1.0] * 16, stopped=[True] * 16, tokens=tokens,
                       logps=[[-1.0] * 3000] * 16) for i in range(4)]
    fitted = fit_items(items)
    assert all(i.completions == completions for i in fitted) and len(fitted) == 4  # every text whole
    assert all(i.tokens == [] and i.logps == [] and i.stopped == [True] * 16 for i in fitted)
    small = fit_items([make_item(("gen", 1, 0, 1), "q", ["ab"], [1.0], stopped=[False], tokens=[[1, 2]], logps=[[-0.5, -1]])])
    assert small[0].tokens == [[1, 2]]  # kept when it fits
