"""The event protocol between a node and whoever watches it (the app, `rl-swarm swarm`, tests).

A node started with ``--json-events`` writes one JSON object per line on stdout. Every line
carries ``v`` (protocol version), ``type`` and ``ts`` (unix seconds) plus the fields its type
declares below. This module is the single definition of every event; it imports only the
standard library so the GUI can use it without pulling in torch or hivemind.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from typing import IO, Any, Callable

VERSION = 6  # 2: round_finished names its timings *_s; 3: log records and services_ready are events;
#             4: paused / resumed; 5: hosting; 6: train_step's policy health, skill

NUM = (int, float)
OPT_STR = (str, type(None))
OPT_NUM = (int, float, type(None))

# type -> {field: accepted python types}. Fields listed are required; extra fields are allowed
# (newer nodes may add some) but never replace these.
SCHEMA: dict[str, dict[str, tuple[type, ...] | type]] = {
    "node_started": {"peer_id": str, "name": str, "model": str, "device": str, "round": int,
                     "role": str},
    "download": {"model": str, "file": str, "downloaded": int, "total": (int, type(None))},
    "round_started": {"round": int, "stage": int, "problems": int},
    "rollouts": {"round": int, "own": int, "received": int, "peers": list, "rejected": dict},
    "dht_ready": {"peer_id": str, "maddrs": list},
    "rewards": {"round": int, "mean": NUM, "own": list, "transplanted": list},
    # own_logp: mean log-prob per token of this peer's own sampled tokens before the step (minus
    # the entropy it samples with: falling means the policy spreads out); external_logp: the same
    # for the other peers' tokens it trained on; external_share: their part of the step's weight
    "train_step": {"round": int, "loss": OPT_NUM, "seconds": NUM, "skipped": bool,
                   "samples": int, "own_logp": OPT_NUM, "external_logp": OPT_NUM, "external_share": NUM},
    # the held-out evaluation (desktop.node.skill): pass rate and mean reward on a fixed set of
    # problems this peer never trains on, greedy, every few rounds
    "skill": {"round": int, "pass_rate": NUM, "reward": NUM, "problems": int, "seconds": NUM},
    # seconds: the whole round; *_s: seconds spent generating, judging, training, talking to peers
    "round_finished": {"round": int, "seconds": NUM, "generate_s": NUM, "judge_s": NUM,
                       "train_s": NUM, "comm_s": NUM, "reward_mean": NUM},
    "checkpoint": {"round": int, "path": str, "seconds": NUM},
    "joined_round": {"round": int, "previous": int},
    "hf_push": {"round": int, "repo": str, "ok": bool},
    "proposer": {"round": int, "difficulty": int, "published": OPT_STR, "feedback": int,
                 "mean_reward": OPT_NUM, "rejected": dict},
    "chain_submitted": {"round": int, "sent": int, "already": int, "failed": int, "pending": int,
                        "error": OPT_STR},
    # a reward queued for a chain round; it holds the rewards of `rounds` rounds (those played while
    # the chain could not be reached are added to the next round the chain names)
    "chain_queued": {"round": int, "reward": int, "rounds": int},
    "chain_status": {"reachable": bool, "message": str},
    # a log record (level DEBUG/INFO/WARNING/ERROR/CRITICAL, the logger's name): the app shows it
    # with its own level instead of guessing one from text; secrets are redacted before it is sent
    "log": {"level": str, "logger": str, "message": str},
    # `rl-swarm services --json`: the first line, where the chain and the login server listen
    "services_ready": {"rpc_url": str, "contract": str, "login_url": str, "api_token_file": str},
    # services with config hosting.enabled, right after services_ready: where other machines reach
    # this swarm and whether its ports answer on that address (checked from this machine); error:
    # why it could not be opened (then the services run for this machine alone)
    "hosting": {"name": str, "rpc": str, "boot": list, "address": str, "rpc_answers": bool,
                "dht_answers": bool, "error": OPT_STR},
    # the node waits at a safe point (reason: desktop.machine.work_window.REASONS; when: "now" / "after-round")
    # and goes on; a pause for memory abandons the round in progress first (its work is not kept)
    "paused": {"round": int, "reason": str, "when": str, "detail": str},
    "resumed": {"round": int, "reason": str, "seconds": NUM},
    "warning": {"message": str},
    "error": {"message": str},
    "node_stopped": {"reason": str, "round": int, "exit_code": int},
}

EVENT_TYPES = frozenset(SCHEMA)


class EventError(ValueError):
    """A line that is not a valid event of this protocol version."""


def validate(event: Any) -> dict:
    """Check an event object against the schema and return it; raise EventError otherwise."""
    if not isinstance(event, dict):
        raise EventError("event is not a JSON object")
    if event.get("v") != VERSION:
        raise EventError(f"unsupported protocol version {event.get('v')!r}")
    etype = event.get("type")
    if etype not in SCHEMA:
        raise EventError(f"unknown event type {etype!r}")
    ts = event.get("ts")
    if not isinstance(ts, NUM) or isinstance(ts, bool):
        raise EventError("missing or invalid 'ts'")
    for field, types in SCHEMA[etype].items():
        if field not in event:
            raise EventError(f"{etype}: missing field {field!r}")
        value = event[field]
        # bool is an int subclass: only accept it where bool is declared
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise EventError(f"{etype}: field {field!r} has type bool")
        if not isinstance(value, types):
            raise EventError(f"{etype}: field {field!r} has type {type(value).__name__}")
    return event


def _finite(etype: str, fields: dict) -> dict:
    """JSON has no NaN or infinity: such a number (a diverged loss) becomes None where the field
    allows None, and is refused where it does not, instead of failing when the line is written."""
    out = dict(fields)
    for name, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            types = SCHEMA.get(etype, {}).get(name, ())
            if type(None) not in (types if isinstance(types, tuple) else (types,)):
                raise EventError(f"{etype}: field {name!r} is {value}, not a finite number")
            out[name] = None
    return out


def make(etype: str, **fields: Any) -> dict:
    """Build and validate an event of type ``etype``."""
    event = {"v": VERSION, "type": etype, "ts": round(time.time(), 3), **_finite(etype, fields)}
    return validate(event)


def encode(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def decode(line: str | bytes) -> dict:
    """Parse one line into a validated event; raise EventError for anything else."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from None
    return validate(obj)


class EventSink:
    """Where a node sends its events: JSON lines on a stream and/or in-process callbacks.

    A stream that breaks (the app reading it is gone) is dropped, never raised: ``on_broken``
    is called once, so the node can stop cleanly instead of failing mid-step."""

    def __init__(self, stream: IO[str] | None = None, on_broken: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._on_broken = on_broken
        self._listeners: list[Callable[[dict], None]] = []
        self._lock = threading.Lock()

    @classmethod
    def stdout(cls) -> "EventSink":
        return cls(sys.stdout)

    def subscribe(self, listener: Callable[[dict], None]) -> None:
        self._listeners.append(listener)

    def emit(self, etype: str, **fields: Any) -> dict:
        event = make(etype, **fields)
        if self._stream is not None:
            line = encode(event) + "\n"  # outside the try: a bad event is not a broken stream
            with self._lock:
                try:
                    self._stream.write(line)
                    self._stream.flush()
                except (OSError, ValueError):  # broken pipe, closed file: nobody listens any more
                    self._stream = None
                    if self._on_broken is not None:
                        self._on_broken()
        for listener in self._listeners:
            listener(event)
        return event
