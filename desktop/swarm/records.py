"""What peers store on the DHT (wire schema version 2; rollouts 3), and the key each record must live under.

Every record is one msgpack map ``{"v": 2, "kind": K, "peer_id": P, "round": R, ...}`` stored in
its publisher's signed ``[owner:…]`` subkey, under a key derived from the record itself:

    rollouts  rollouts/<peer_id>       the publisher's latest rollouts (+ stage, model, items)
    roster    roster/<bucket(peer_id)> "I am here": role, unix time (directory and peers' clock)

(proposer problems and solver feedback, in ``problems_exchange``, follow the same rules). A key
that holds one publisher's record, or one of ``ROSTER_BUCKETS`` shards of the directory, never
has to carry what the whole swarm publishes. Rollout items name their problem by a *reference*
every peer can rebuild and judge itself (``desktop.codezero.refs``), never by trusting the text.
Rollouts (v3; v2 is still read) may also say, per completion, whether it stopped on its own, the
token ids the publisher's model sampled and their log-probs (milli-nats): a reader running the
same model trains on those tokens and weighs them by that probability (``desktop.node.offpolicy``).

Every byte read from the swarm comes from a stranger: decoding bounds sizes before and while
unpacking, checks types strictly (no bool for int, no extra or missing keys) and turns every
failure into ``RecordError(reason)`` with a short machine reason the UI can count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import msgpack

from desktop.identity import is_valid_peer_id

VERSION = 2
ROLLOUTS_VERSION = 3
READ_ROLLOUTS = (2, 3)  # v2: text only
MAX_RECORD_BYTES = 256 * 1024
MAX_ITEMS = 8
MAX_COMPLETIONS = 16
MAX_COMPLETION_CHARS = 16_000
MAX_MODEL_CHARS = 256
MAX_REF_CHARS = 256
MAX_TOKENS = 4096          # token ids per completion
MAX_TOKEN_ID = 2**31 - 1
MAX_MILLI_NATS = 100_000   # a token's -log-prob, in thousandths: 100 nats is already impossible
MAX_ROUND = 2**63 - 1
REWARD_BOUND = 10.0
ROSTER_BUCKETS = 16
ROLES = ("solver", "proposer")

REASONS = ("garbage", "schema", "oversized", "batch_id", "stale_round", "future_round",
           "forged_publisher")

_ENVELOPE = frozenset({"v", "kind", "peer_id", "round"})
_ROLLOUTS_KEYS = _ENVELOPE | {"stage", "model", "items"}
_ROSTER_KEYS = _ENVELOPE | {"role", "at"}
_ITEM_KEYS = frozenset({"ref", "batch_id", "completions", "rewards"})
_ITEM_KEYS_V3 = _ITEM_KEYS | {"stopped", "tokens", "logps"}
_REF_KINDS = {"gen": (int, int, int), "humaneval": (str,), "mbpp": (str, str), "proposer": (str, int, str)}

# Limits handed to the C unpacker so a hostile length prefix can't make it allocate or recurse
# much: no container is longer than the longest list in any schema, no map wider than the widest
# map, and no binary/ext data appears at all.
_UNPACK_LIMITS = dict(max_str_len=MAX_RECORD_BYTES, max_bin_len=0, max_ext_len=0,
                      max_array_len=MAX_TOKENS, max_map_len=16)
_ENVELOPE_BYTES = 1024  # room left for the envelope when fitting our own items


class RecordError(Exception):
    """A peer record was refused; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- keys --------------------------------------------------------------------------------------

def bucket_of(peer_id: str, buckets: int = ROSTER_BUCKETS) -> int:
    return int.from_bytes(hashlib.sha256(peer_id.encode()).digest()[:4], "big") % buckets


def rollouts_key(peer_id: str) -> str:
    return f"rollouts/{peer_id}"


def roster_key(bucket: int) -> str:
    return f"roster/{bucket}"


# --- shared checks -----------------------------------------------------------------------------

def is_int(x: Any) -> bool:
    return type(x) is int  # bool is a subclass of int; a peer's True is not round 1


def check_str(x: Any, limit: int, what: str) -> str:
    if type(x) is not str:
        raise RecordError("schema", f"{what} is not a string")
    if len(x) > limit:
        raise RecordError("oversized", f"{what} longer than {limit} characters")
    return x


def unpack(data: Any, limits: dict | None = None) -> Any:
    """msgpack -> Python with every size bounded; RecordError for anything that is not."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordError("garbage", f"value is {type(data).__name__}, not bytes")
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError("oversized", f"{len(data)} bytes > {MAX_RECORD_BYTES}")
    try:
        return msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True,
                               **(limits or _UNPACK_LIMITS))
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


def check_envelope(obj: Any, keys: frozenset, kind: str, expected_peer_id: str | None,
                   versions: tuple[int, ...] = (VERSION,)) -> tuple[str, int]:
    """(peer id, round) of a record of ``kind`` with exactly ``keys``."""
    if type(obj) is not dict or set(obj) != keys:
        raise RecordError("schema", "keys")
    if not is_int(obj["v"]) or obj["v"] not in versions or obj["kind"] != kind:
        raise RecordError("schema", "unknown version or kind")
    peer_id, round_number = obj["peer_id"], obj["round"]
    if type(peer_id) is not str or len(peer_id) > 128 or not is_valid_peer_id(peer_id):
        raise RecordError("schema", "peer_id")
    if not is_int(round_number) or not 0 <= round_number <= MAX_ROUND:
        raise RecordError("schema", "round")
    if expected_peer_id is not None and peer_id != expected_peer_id:
        raise RecordError("forged_publisher", "record names a peer other than its signer")
    return peer_id, round_number


def check_window(round_number: int, expected_round: int | None, window: int) -> None:
    """Records more than ``window`` rounds away from ours are of no use (peers drift apart a
    little when no barrier holds them together)."""
    if expected_round is None:
        return
    if round_number > expected_round + window:
        raise RecordError("future_round", f"round {round_number}")
    if round_number < expected_round - window:
        raise RecordError("stale_round", f"round {round_number}")


# --- rollouts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RolloutItem:
    ref: tuple            # the problem, as every peer can rebuild it (desktop.codezero.refs)
    batch_id: str         # md5 of the question the publisher built from ``ref``
    completions: list[str]
    rewards: list[float] = field(default_factory=list)  # the publisher's own judgement: a hint only
    # per completion (each list empty, or one entry per completion): ended on its own (not at
    # the token limit); the token ids sampled; their log-probs under the sampling policy
    stopped: list[bool] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    logps: list[list[float]] = field(default_factory=list)


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


def check_ref(raw: Any) -> tuple:
    """A problem reference's shape: ``[kind, ...fields]`` with the field types of its kind."""
    if type(raw) is not list or not raw or type(raw[0]) is not str or raw[0] not in _REF_KINDS:
        raise RecordError("schema", "problem reference")
    types = _REF_KINDS[raw[0]]
    if len(raw) != len(types) + 1:
        raise RecordError("schema", "problem reference fields")
    for value, kind in zip(raw[1:], types):
        if kind is int and not (is_int(value) and 0 <= value < 2**64):
            raise RecordError("schema", "problem reference number")
        if kind is str:
            check_str(value, MAX_REF_CHARS, "problem reference")
    return tuple(raw)


def make_item(ref: tuple, question: str, completions: Sequence[str],
              rewards: Sequence[float] | None = None, *, stopped: Sequence[bool] | None = None,
              tokens: Sequence[Sequence[int]] | None = None,
              logps: Sequence[Sequence[float]] | None = None) -> RolloutItem:
    return RolloutItem(tuple(ref), batch_id_of(question), list(completions),
                       [float(r) for r in rewards] if rewards else [],
                       [bool(x) for x in stopped] if stopped else [],
                       [[int(t) for t in row] for row in tokens] if tokens else [],
                       [[float(x) for x in row] for row in logps] if tokens and logps else [])


def fit_items(items: Sequence[RolloutItem]) -> list[RolloutItem]:
    """Trim our own rollouts to what every peer accepts (others would drop the whole record).

    Keeps the first MAX_ITEMS items and MAX_COMPLETIONS completions of each (with their rewards),
    then shortens completions, halving their length cap, until the record fits; trailing items
    go only if even short completions don't fit.
    """
    kept = []
    for item in list(items)[:MAX_ITEMS]:
        completions = [_clean(c) for c in item.completions[:MAX_COMPLETIONS]]
        rewards = [max(-REWARD_BOUND, min(REWARD_BOUND, float(r))) for r in item.rewards[:len(completions)]]
        if len(rewards) != len(completions) or not all(map(math.isfinite, rewards)):
            rewards = []
        stopped = list(item.stopped[:len(completions)]) if len(item.stopped) >= len(completions) else []
        tokens, logps = _fit_tokens(item, completions)
        if completions:
            kept.append((item, completions, rewards, stopped, tokens, logps))

    def build(limit: int, with_tokens: bool = True) -> list[RolloutItem]:
        # a completion cut short no longer matches its tokens: those go with the cut
        return [RolloutItem(i.ref, i.batch_id, [c[:limit] for c in cs], rs, st,
                            tk if with_tokens and limit >= MAX_COMPLETION_CHARS else [],
                            lp if with_tokens and limit >= MAX_COMPLETION_CHARS else [])
                for i, cs, rs, st, tk, lp in kept]

    def fits(candidate: list[RolloutItem]) -> bool:
        return len(_pack_rollouts("", 0, 0, "", candidate)) <= MAX_RECORD_BYTES - _ENVELOPE_BYTES

    limit = MAX_COMPLETION_CHARS
    fitted = build(limit)
    if not fits(fitted):  # the text first: tokens and log-probs are the part a reader can do without
        fitted = build(limit, with_tokens=False)
    while not fits(fitted) and limit > 256:
        limit //= 2
        fitted = build(limit)
    while fitted and not fits(fitted):
        fitted.pop()
    return fitted


def _fit_tokens(item: RolloutItem, completions: list[str]) -> tuple[list, list]:
    """The item's tokens and log-probs when they are whole and within bounds, else none."""
    n = len(completions)
    if len(item.tokens) < n or len(item.logps) < n:
        return [], []
    tokens = [list(t) for t in item.tokens[:n]]
    logps = [list(lp) for lp in item.logps[:n]]
    ok = all(0 < len(t) <= MAX_TOKENS and len(lp) == len(t) and all(0 <= x <= MAX_TOKEN_ID for x in t)
             and all(math.isfinite(x) for x in lp) for t, lp in zip(tokens, logps))
    return (tokens, logps) if ok else ([], [])


def _milli_nats(logp: float) -> int:
    return int(min(MAX_MILLI_NATS, max(0, round(-logp * 1000))))


def _clean(text: str) -> str:
    # Lone surrogates (possible in decoded model output) cannot be packed as UTF-8.
    return str(text).encode("utf-8", "replace").decode("utf-8")


def _pack_rollouts(peer_id: str, round_number: int, stage: int, model: str,
                   items: Sequence[RolloutItem]) -> bytes:
    return msgpack.packb({
        "v": ROLLOUTS_VERSION, "kind": "rollouts", "peer_id": peer_id, "round": round_number, "stage": stage,
        "model": model,
        "items": [{"ref": list(i.ref), "batch_id": i.batch_id, "completions": list(i.completions),
                   "rewards": [float(r) for r in i.rewards], "stopped": [bool(x) for x in i.stopped],
                   "tokens": [list(t) for t in i.tokens],
                   "logps": [[_milli_nats(x) for x in lp] for lp in i.logps]} for i in items],
    }, use_bin_type=True)


def encode_rollouts(peer_id: str, round_number: int, stage: int, model: str,
                    items: Sequence[RolloutItem]) -> bytes:
    """Serialize our own record; raises RecordError if peers would refuse it (use fit_items)."""
    data = _pack_rollouts(peer_id, round_number, stage, model, items)
    decode_rollouts(data)  # the reader's rules, so we never publish something every peer drops
    return data


def _decode_item(raw: Any, version: int) -> RolloutItem:
    if type(raw) is not dict or set(raw) != (_ITEM_KEYS_V3 if version >= 3 else _ITEM_KEYS):
        raise RecordError("schema", "item keys")
    ref = check_ref(raw["ref"])
    batch_id = raw["batch_id"]
    if type(batch_id) is not str or len(batch_id) != 32:
        raise RecordError("batch_id", "batch_id is not an md5 hex digest")
    completions, rewards = raw["completions"], raw["rewards"]
    if type(completions) is not list or type(rewards) is not list:
        raise RecordError("schema", "completions/rewards are not lists")
    if len(completions) > MAX_COMPLETIONS:
        raise RecordError("oversized", f"more than {MAX_COMPLETIONS} completions")
    if not completions:
        raise RecordError("schema", "no completions")
    completions = [check_str(c, MAX_COMPLETION_CHARS, "completion") for c in completions]
    if len(rewards) not in (0, len(completions)):
        raise RecordError("schema", "rewards do not match completions")
    for r in rewards:
        if type(r) is not float or not math.isfinite(r) or abs(r) > REWARD_BOUND:
            raise RecordError("schema", "reward is not a finite float in range")
    if version < 3:
        return RolloutItem(ref, batch_id, completions, list(rewards))
    stopped, tokens, logps = raw["stopped"], raw["tokens"], raw["logps"]
    if type(stopped) is not list or len(stopped) not in (0, len(completions)) or any(type(x) is not bool for x in stopped):
        raise RecordError("schema", "stopped")
    if type(tokens) is not list or type(logps) is not list or len(tokens) not in (0, len(completions)) \
            or len(logps) != len(tokens):
        raise RecordError("schema", "tokens/logps do not match completions")
    for row, lp in zip(tokens, logps):
        if type(row) is not list or type(lp) is not list or not 0 < len(row) <= MAX_TOKENS or len(lp) != len(row):
            raise RecordError("schema", "a completion's tokens")
        if not all(is_int(t) and 0 <= t <= MAX_TOKEN_ID for t in row) or \
                not all(is_int(x) and 0 <= x <= MAX_MILLI_NATS for x in lp):
            raise RecordError("schema", "a token id or log-prob out of range")
    return RolloutItem(ref, batch_id, completions, list(rewards), list(stopped), [list(t) for t in tokens],
                       [[-x / 1000.0 for x in lp] for lp in logps])


def decode_rollouts(data: Any, *, expected_round: int | None = None, round_window: int = 0,
                    expected_peer_id: str | None = None) -> RolloutRecord:
    """Parse and validate an untrusted rollouts record; raises only RecordError.

    With ``expected_round``, rounds within ``round_window`` of it are accepted. ``expected_peer_id``
    is the id proven by the DHT signature: a record claiming another publisher is refused as
    "forged_publisher".
    """
    obj = unpack(data)
    peer_id, round_number = check_envelope(obj, _ROLLOUTS_KEYS, "rollouts", expected_peer_id, READ_ROLLOUTS)
    stage = obj["stage"]
    if not is_int(stage) or not 0 <= stage <= MAX_ROUND:
        raise RecordError("schema", "stage")
    model = check_str(obj["model"], MAX_MODEL_CHARS, "model")
    items = obj["items"]
    if type(items) is not list:
        raise RecordError("schema", "items is not a list")
    if len(items) > MAX_ITEMS:
        raise RecordError("oversized", f"more than {MAX_ITEMS} items")
    check_window(round_number, expected_round, round_window)
    decoded = [_decode_item(raw, obj["v"]) for raw in items]
    if len({i.batch_id for i in decoded}) != len(decoded):
        raise RecordError("schema", "duplicate question")
    return RolloutRecord(peer_id, round_number, stage, model, decoded)


# --- roster ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RosterEntry:
    peer_id: str
    round: int
    role: str
    at: int  # unix seconds when it was written (the publisher's clock)


def encode_roster(peer_id: str, round_number: int, role: str, at: int) -> bytes:
    data = msgpack.packb({"v": VERSION, "kind": "roster", "peer_id": peer_id, "round": int(round_number),
                          "role": role, "at": int(at)}, use_bin_type=True)
    decode_roster(data)
    return data


def decode_roster(data: Any, *, expected_peer_id: str | None = None) -> RosterEntry:
    obj = unpack(data)
    peer_id, round_number = check_envelope(obj, _ROSTER_KEYS, "roster", expected_peer_id)
    if obj["role"] not in ROLES or not is_int(obj["at"]) or not 0 <= obj["at"] < 2**40:
        raise RecordError("schema", "role or time")
    return RosterEntry(peer_id, round_number, obj["role"], obj["at"])
