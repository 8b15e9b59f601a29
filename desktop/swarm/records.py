"""The wire format of one peer's rollouts for one round and stage (schema version 1).

    {"v": 1, "peer_id": str, "round": int, "stage": int, "model": str,
     "items": [{"question": str, "batch_id": md5-hex(question), "completions": [str],
                "rewards": [float]}]}

Every byte read from the swarm comes from a stranger, so decoding bounds sizes before and
while unpacking, checks types strictly (no bool for int, no extra or missing keys) and turns
every failure into ``RecordError(reason)`` with a short machine reason the UI can count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import msgpack

from desktop.identity import is_valid_peer_id

VERSION = 1
MAX_RECORD_BYTES = 256 * 1024
MAX_ITEMS = 8
MAX_COMPLETIONS = 16
MAX_COMPLETION_CHARS = 16_000
MAX_QUESTION_CHARS = 8_000
MAX_MODEL_CHARS = 256
MAX_ROUND = 2**63 - 1
REWARD_BOUND = 10.0

REASONS = ("garbage", "schema", "oversized", "batch_id", "stale_round", "future_round",
           "forged_publisher")

_TOP_KEYS = frozenset({"v", "peer_id", "round", "stage", "model", "items"})
_ITEM_KEYS = frozenset({"question", "batch_id", "completions", "rewards"})

# Limits handed to the C unpacker so a hostile length prefix can't make it allocate or
# recurse much: no container is longer than the longest list in the schema, no map wider
# than the widest map, and no binary/ext data appears at all.
_UNPACK_LIMITS = dict(
    max_str_len=MAX_RECORD_BYTES,
    max_bin_len=0,
    max_ext_len=0,
    max_array_len=MAX_COMPLETIONS,
    max_map_len=16,  # above the 6 keys of the schema, so an extra key reads as "schema"
)
# Room left for the envelope (peer id, model name, keys) when fitting our own items.
_ENVELOPE_BYTES = 1024


class RecordError(Exception):
    """A peer record was refused; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RolloutItem:
    question: str
    batch_id: str
    completions: list[str]
    rewards: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class RolloutRecord:
    peer_id: str
    round: int
    stage: int
    model: str
    items: list[RolloutItem]


def batch_id_of(question: str) -> str:
    """GenRL's batch id: md5 of the question text (identifies the prompt, not a secret)."""
    return hashlib.md5(question.encode("utf-8", "surrogatepass")).hexdigest()


def make_item(question: str, completions: Sequence[str],
              rewards: Sequence[float] | None = None) -> RolloutItem:
    return RolloutItem(question, batch_id_of(question), list(completions),
                       [float(r) for r in rewards] if rewards else [])


def fit_items(items: Sequence[RolloutItem]) -> list[RolloutItem]:
    """Trim our own rollouts to what every peer accepts (others would drop the whole record).

    Keeps the first MAX_ITEMS questions and MAX_COMPLETIONS completions of each (with their
    rewards), then shortens completions, halving their length cap, until the record fits;
    trailing items go only if even short completions don't fit.
    """
    kept = []
    for item in list(items)[:MAX_ITEMS]:
        question = _clean(item.question)[:MAX_QUESTION_CHARS]
        completions = [_clean(c) for c in item.completions[:MAX_COMPLETIONS]]
        rewards = [max(-REWARD_BOUND, min(REWARD_BOUND, float(r)))
                   for r in item.rewards[:len(completions)]]
        if len(rewards) != len(completions) or not all(map(math.isfinite, rewards)):
            rewards = []
        if completions:
            kept.append((question, completions, rewards))

    def build(limit: int) -> list[RolloutItem]:
        return [RolloutItem(q, batch_id_of(q), [c[:limit] for c in cs], rs) for q, cs, rs in kept]

    def fits(candidate: list[RolloutItem]) -> bool:
        return len(_pack_items("", 0, 0, "", candidate)) <= MAX_RECORD_BYTES - _ENVELOPE_BYTES

    limit = MAX_COMPLETION_CHARS
    fitted = build(limit)
    while not fits(fitted) and limit > 256:
        limit //= 2
        fitted = build(limit)
    while fitted and not fits(fitted):
        fitted.pop()
    return fitted


def _clean(text: str) -> str:
    # Lone surrogates (possible in decoded model output) cannot be packed as UTF-8.
    return str(text).encode("utf-8", "replace").decode("utf-8")


def _pack_items(peer_id: str, round_number: int, stage: int, model: str,
                items: Sequence[RolloutItem]) -> bytes:
    return msgpack.packb({
        "v": VERSION, "peer_id": peer_id, "round": round_number, "stage": stage, "model": model,
        "items": [{"question": i.question, "batch_id": i.batch_id,
                   "completions": list(i.completions), "rewards": [float(r) for r in i.rewards]}
                  for i in items],
    }, use_bin_type=True)


def encode_rollouts(peer_id: str, round_number: int, stage: int, model: str,
                    items: Sequence[RolloutItem]) -> bytes:
    """Serialize our own record; raises RecordError if peers would refuse it (use fit_items)."""
    data = _pack_items(peer_id, round_number, stage, model, items)
    # Check with the reader's rules so we never publish something every peer drops.
    decode_rollouts(data, expected_round=round_number, expected_stage=stage, round_window=0)
    return data


# --- decoding ----------------------------------------------------------------------------

def _is_int(x: Any) -> bool:
    return type(x) is int  # bool is a subclass of int; a peer's True is not round 1


def _check_str(x: Any, limit: int, what: str) -> str:
    if type(x) is not str:
        raise RecordError("schema", f"{what} is not a string")
    if len(x) > limit:
        raise RecordError("oversized", f"{what} longer than {limit} characters")
    return x


def _unpack(data: Any) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordError("garbage", f"value is {type(data).__name__}, not bytes")
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError("oversized", f"{len(data)} bytes > {MAX_RECORD_BYTES}")
    try:
        return msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True,
                               **_UNPACK_LIMITS)
    except ValueError as exc:
        # The C unpacker reports a broken limit as a plain ValueError "... exceeds max_...".
        # Binary and ext data are banned outright (limit 0): a type error, not a size one.
        if "max_bin_len" in str(exc) or "max_ext_len" in str(exc):
            raise RecordError("schema", "binary or extension data") from None
        if "exceeds max_" in str(exc):
            raise RecordError("oversized", "a string or container exceeds its limit") from None
        raise RecordError("garbage", type(exc).__name__) from None
    except Exception as exc:  # OutOfData, StackError, UnicodeDecodeError, TypeError, ...
        raise RecordError("garbage", type(exc).__name__) from None


def _decode_item(raw: Any) -> RolloutItem:
    if type(raw) is not dict or set(raw) != _ITEM_KEYS:
        raise RecordError("schema", "item keys")
    question = _check_str(raw["question"], MAX_QUESTION_CHARS, "question")
    batch_id = raw["batch_id"]
    if type(batch_id) is not str:
        raise RecordError("schema", "batch_id is not a string")
    completions, rewards = raw["completions"], raw["rewards"]
    if type(completions) is not list or type(rewards) is not list:
        raise RecordError("schema", "completions/rewards are not lists")
    if not 1 <= len(completions) <= MAX_COMPLETIONS:
        raise RecordError("schema", "number of completions")
    completions = [_check_str(c, MAX_COMPLETION_CHARS, "completion") for c in completions]
    if len(rewards) not in (0, len(completions)):
        raise RecordError("schema", "rewards do not match completions")
    for r in rewards:
        if type(r) is not float or not math.isfinite(r) or abs(r) > REWARD_BOUND:
            raise RecordError("schema", "reward is not a finite float in range")
    if batch_id != batch_id_of(question):
        raise RecordError("batch_id", "batch_id is not md5(question)")
    return RolloutItem(question, batch_id, completions, list(rewards))


def decode_rollouts(data: Any, *, expected_round: int, expected_stage: int, round_window: int,
                    expected_peer_id: str | None = None) -> RolloutRecord:
    """Parse and validate an untrusted record; raises only RecordError.

    Rounds from ``expected_round - round_window`` up to ``expected_round`` are accepted (a
    peer one round behind still plays useful rollouts); in the expected round the stage must
    match. ``expected_peer_id`` is the id proven by the DHT signature: a record claiming
    another publisher is refused as "forged_publisher".
    """
    obj = _unpack(data)
    if type(obj) is not dict or set(obj) != _TOP_KEYS:
        raise RecordError("schema", "top-level keys")
    if not _is_int(obj["v"]) or obj["v"] != VERSION:
        raise RecordError("schema", "unknown version")
    peer_id = obj["peer_id"]
    if type(peer_id) is not str or len(peer_id) > 128 or not is_valid_peer_id(peer_id):
        raise RecordError("schema", "peer_id")
    round_number, stage = obj["round"], obj["stage"]
    if not (_is_int(round_number) and _is_int(stage)
            and 0 <= round_number <= MAX_ROUND and 0 <= stage <= MAX_ROUND):
        raise RecordError("schema", "round/stage")
    model = _check_str(obj["model"], MAX_MODEL_CHARS, "model")
    items = obj["items"]
    if type(items) is not list:
        raise RecordError("schema", "items is not a list")
    if len(items) > MAX_ITEMS:
        raise RecordError("oversized", f"more than {MAX_ITEMS} items")

    if (round_number, stage) > (expected_round, expected_stage):
        raise RecordError("future_round", f"round {round_number} stage {stage}")
    if round_number < expected_round - round_window or (
            round_number == expected_round and stage != expected_stage):
        raise RecordError("stale_round", f"round {round_number} stage {stage}")
    if expected_peer_id is not None and peer_id != expected_peer_id:
        raise RecordError("forged_publisher", "record names a peer other than its signer")

    decoded = [_decode_item(raw) for raw in items]
    if len({i.batch_id for i in decoded}) != len(decoded):
        raise RecordError("schema", "duplicate question")
    return RolloutRecord(peer_id, round_number, stage, model, decoded)
