"""CodeZero's proposer <-> solver traffic over the DHT (schema version 1).

As in GenRL, proposers store their problems under the key ``proposer`` and solvers their
rewards under ``solver``, each in its own signed ``[owner:…]`` subkey (so every peer has one
live record per key: the newest replaces the last). Wire formats, msgpack:

    proposer: {"v": 1, "peer_id": str, "round": int,
               "problems": [{"id": str, "question": str, "tests": str,
                             "entry_point": str | None, "difficulty": 0..4}]}   (<= 4 problems)
    solver:   {"v": 1, "peer_id": str, "round": int, "problem_id": str,
               "rewards": [float in [-10, 10]]}

Both are read from strangers: decoding reuses the bounded unpacker of ``records``, types are
checked strictly, the named peer id must be the one the subkey's signature proves, and every
refusal is a ``RecordError`` that the channels count by reason instead of raising.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import msgpack

from desktop.codezero.problems import Problem
from desktop.identity import is_valid_peer_id

from .dht import publisher_peer_id
# The bounded unpacker and strict type checks of the rollout records, shared on purpose.
from .records import MAX_ROUND, REWARD_BOUND, RecordError, _check_str, _is_int, _unpack

log = logging.getLogger(__name__)

VERSION = 1
PROPOSER_KEY = "proposer"
SOLVER_KEY = "solver"
MAX_PROBLEMS = 4
MAX_QUESTION_CHARS = 8_000
MAX_TESTS_CHARS = 16_000
MAX_ID_CHARS = 128
MAX_REWARDS = 16  # the bounded unpacker allows no longer list anyway
LEVELS = 5
EXPIRATION_S = 600.0

_PROPOSER_KEYS = frozenset({"v", "peer_id", "round", "problems"})
_PROBLEM_KEYS = frozenset({"id", "question", "tests", "entry_point", "difficulty"})
_SOLVER_KEYS = frozenset({"v", "peer_id", "round", "problem_id", "rewards"})


@dataclass(frozen=True)
class ProposerRecord:
    peer_id: str
    round: int
    problems: list[Problem]


@dataclass(frozen=True)
class Feedback:
    peer_id: str
    round: int
    problem_id: str
    rewards: list[float]

    @property
    def mean(self) -> float:
        return sum(self.rewards) / len(self.rewards)


# --- encoding and decoding (pure) ------------------------------------------------------------

def problem_fits(problem: Problem) -> bool:
    """Whether peers would accept this problem at all (else it is left out, not truncated:
    a cut question or test file is a different, probably broken, problem)."""
    entry = problem.entry_point
    return (0 < len(problem.id) <= MAX_ID_CHARS and len(problem.question) <= MAX_QUESTION_CHARS
            and len(problem.tests) <= MAX_TESTS_CHARS and type(problem.difficulty) is int
            and 0 <= problem.difficulty < LEVELS
            and (entry is None or (entry.isidentifier() and len(entry) <= MAX_ID_CHARS)))


def _pack_problems(peer_id: str, round_number: int, problems: Sequence[Problem]) -> bytes:
    return msgpack.packb({
        "v": VERSION, "peer_id": peer_id, "round": round_number,
        "problems": [{"id": p.id, "question": p.question, "tests": p.tests,
                      "entry_point": p.entry_point, "difficulty": p.difficulty} for p in problems],
    }, use_bin_type=True)


def encode_problems(peer_id: str, round_number: int, problems: Sequence[Problem]) -> bytes:
    """Our own proposer record; raises RecordError if peers would refuse it."""
    data = _pack_problems(peer_id, round_number, problems)
    decode_problems(data, expected_round=round_number, round_window=0)  # the readers' rules
    return data


def _check_peer_and_round(obj: dict, expected_peer_id: str | None) -> tuple[str, int]:
    if not _is_int(obj["v"]) or obj["v"] != VERSION:
        raise RecordError("schema", "unknown version")
    peer_id, round_number = obj["peer_id"], obj["round"]
    if type(peer_id) is not str or len(peer_id) > 128 or not is_valid_peer_id(peer_id):
        raise RecordError("schema", "peer_id")
    if not _is_int(round_number) or not 0 <= round_number <= MAX_ROUND:
        raise RecordError("schema", "round")
    if expected_peer_id is not None and peer_id != expected_peer_id:
        raise RecordError("forged_publisher", "record names a peer other than its signer")
    return peer_id, round_number


def _decode_problem(raw: Any) -> Problem:
    if type(raw) is not dict or set(raw) != _PROBLEM_KEYS:
        raise RecordError("schema", "problem keys")
    problem_id = _check_str(raw["id"], MAX_ID_CHARS, "id")
    question = _check_str(raw["question"], MAX_QUESTION_CHARS, "question")
    tests = _check_str(raw["tests"], MAX_TESTS_CHARS, "tests")
    entry_point, difficulty = raw["entry_point"], raw["difficulty"]
    if entry_point is not None:
        entry_point = _check_str(entry_point, MAX_ID_CHARS, "entry_point")
        if not entry_point.isidentifier():
            raise RecordError("schema", "entry_point is not a Python name")
    if not problem_id or not question.strip() or not tests.strip():
        raise RecordError("schema", "empty id, question or tests")
    if not _is_int(difficulty) or not 0 <= difficulty < LEVELS:
        raise RecordError("schema", "difficulty")
    return Problem(id=problem_id, question=question, tests=tests, entry_point=entry_point,
                   difficulty=difficulty, source="proposer")


def decode_problems(data: Any, *, expected_round: int, round_window: int,
                    expected_peer_id: str | None = None) -> ProposerRecord:
    """Parse an untrusted proposer record from rounds expected_round - round_window ..
    expected_round; raises only RecordError."""
    obj = _unpack(data)
    if type(obj) is not dict or set(obj) != _PROPOSER_KEYS:
        raise RecordError("schema", "top-level keys")
    peer_id, round_number = _check_peer_and_round(obj, expected_peer_id)
    problems = obj["problems"]
    if type(problems) is not list:
        raise RecordError("schema", "problems is not a list")
    if len(problems) > MAX_PROBLEMS:
        raise RecordError("oversized", f"more than {MAX_PROBLEMS} problems")
    # Round checks before decoding the problems: a stale record needs no more work.
    if round_number > expected_round:
        raise RecordError("future_round", f"round {round_number}")
    if round_number < expected_round - round_window:
        raise RecordError("stale_round", f"round {round_number}")
    decoded = [_decode_problem(raw) for raw in problems]
    if len({p.id for p in decoded}) != len(decoded):
        raise RecordError("schema", "duplicate problem id")
    return ProposerRecord(peer_id, round_number, decoded)


def encode_feedback(peer_id: str, round_number: int, problem_id: str,
                    rewards: Sequence[float]) -> bytes:
    """Our own solver record; raises RecordError if peers would refuse it."""
    data = msgpack.packb({"v": VERSION, "peer_id": peer_id, "round": round_number,
                          "problem_id": problem_id, "rewards": [float(r) for r in rewards]},
                         use_bin_type=True)
    decode_feedback(data)
    return data


def decode_feedback(data: Any, *, expected_peer_id: str | None = None) -> Feedback:
    """Parse an untrusted solver record; raises only RecordError."""
    obj = _unpack(data)
    if type(obj) is not dict or set(obj) != _SOLVER_KEYS:
        raise RecordError("schema", "top-level keys")
    peer_id, round_number = _check_peer_and_round(obj, expected_peer_id)
    problem_id = _check_str(obj["problem_id"], MAX_ID_CHARS, "problem_id")
    rewards = obj["rewards"]
    if type(rewards) is not list or not 1 <= len(rewards) <= MAX_REWARDS:
        raise RecordError("schema", "rewards is not a non-empty list")
    for r in rewards:
        if type(r) is not float or not math.isfinite(r) or abs(r) > REWARD_BOUND:
            raise RecordError("schema", "reward is not a finite float in range")
    return Feedback(peer_id, round_number, problem_id, list(rewards))


# --- the channels ----------------------------------------------------------------------------

class _Channel:
    def __init__(self, dht: Any, peer_id: str, expiration: float):
        if peer_id != dht.peer_id:
            # Our records would name one peer and be signed by another: every reader drops them.
            raise ValueError(f"peer_id {peer_id} is not the DHT's identity {dht.peer_id}")
        self.dht = dht
        self.peer_id = peer_id
        self.expiration = expiration
        self.last_rejected: dict[str, int] = {}

    def _store(self, key: str, payload: bytes, problems: Counter) -> bool:
        try:
            if self.dht.store(key, self.dht.subkey, payload, self.expiration):
                return True
            log.warning("no DHT peer accepted our %s record", key)
        except Exception as exc:  # a network hiccup must not stop training
            log.warning("publishing the %s record failed: %s", key, exc)
        problems["dht_error"] += 1
        return False

    def _signed_entries(self, key: str, problems: Counter) -> list[tuple[str, Any]]:
        """(publisher, value) for every entry whose subkey proves who wrote it."""
        try:
            entries = self.dht.get(key)
        except Exception as exc:
            log.debug("reading %s failed: %s", key, exc)
            problems["dht_error"] += 1
            return []
        signed = []
        for subkey, value in entries.items():
            publisher = publisher_peer_id(subkey)
            if publisher is None:
                problems["unsigned"] += 1
            else:
                signed.append((publisher, value))
        return signed


class ProposerChannel(_Channel):
    """The proposer's side: publish problems, read the solvers' rewards for them."""

    def __init__(self, dht: Any, peer_id: str, expiration: float = EXPIRATION_S,
                 remember: int = 256):
        super().__init__(dht, peer_id, expiration)
        self._remember = remember
        self._ours: OrderedDict[str, int] = OrderedDict()  # published problem id -> round
        self._seen: OrderedDict[tuple[str, int, str], None] = OrderedDict()

    def publish_problems(self, round_number: int, problems: Sequence[Problem]) -> list[str]:
        """Store up to MAX_PROBLEMS problems for this round; returns the ids published."""
        counts: Counter[str] = Counter()
        fitting = [p for p in problems if problem_fits(p)][:MAX_PROBLEMS]
        if len(fitting) < len(problems):  # misfits and overflow: ours, so worth seeing
            counts["own_record"] += len(problems) - len(fitting)
        payload = None
        while fitting:  # drop trailing problems until the record is small enough for peers
            try:
                payload = encode_problems(self.peer_id, round_number, fitting)
                break
            except RecordError:
                fitting.pop()
                counts["own_record"] += 1
        published: list[str] = []
        if payload is not None and self._store(PROPOSER_KEY, payload, counts):
            published = [p.id for p in fitting]
            for problem_id in published:
                self._ours[problem_id] = round_number
                self._ours.move_to_end(problem_id)
            while len(self._ours) > self._remember:
                self._ours.popitem(last=False)
        self.last_rejected = dict(counts)
        return published

    def read_feedback(self, since_round: int = 0) -> list[Feedback]:
        """New, valid feedback on our problems from rounds >= since_round, each (peer, round,
        problem) once across calls. Feedback on other proposers' problems is skipped quietly."""
        counts: Counter[str] = Counter()
        fresh = []
        for publisher, value in self._signed_entries(SOLVER_KEY, counts):
            try:
                feedback = decode_feedback(value, expected_peer_id=publisher)
            except RecordError as exc:
                log.debug("refused solver record from %s: %s", publisher, exc)
                counts[exc.reason] += 1
                continue
            ident = (feedback.peer_id, feedback.round, feedback.problem_id)
            if (feedback.problem_id not in self._ours or feedback.round < since_round
                    or ident in self._seen):
                continue
            self._seen[ident] = None
            fresh.append(feedback)
        while len(self._seen) > 4 * self._remember:
            self._seen.popitem(last=False)
        self.last_rejected = dict(counts)
        return sorted(fresh, key=lambda f: (f.round, f.peer_id, f.problem_id))


class SolverChannel(_Channel):
    """The solver's side: fetch a proposer's problem for this round, report rewards on it.

    Our own proposer record is not skipped: one node may play both roles in a local swarm."""

    def __init__(self, dht: Any, peer_id: str, round_window: int = 3,
                 expiration: float = EXPIRATION_S):
        super().__init__(dht, peer_id, expiration)
        self.round_window = round_window

    def fetch_problem(self, round_number: int) -> Problem | None:
        """A problem from the newest valid proposer records within the round window.

        When several problems are equally new, the pick is a hash of (round, our peer id):
        the same for every call, yet spread so that solvers don't all pile on one proposer.
        """
        counts: Counter[str] = Counter()
        records = []
        for publisher, value in self._signed_entries(PROPOSER_KEY, counts):
            try:
                records.append(decode_problems(value, expected_round=round_number,
                                               round_window=self.round_window,
                                               expected_peer_id=publisher))
            except RecordError as exc:
                log.debug("refused proposer record from %s: %s", publisher, exc)
                counts[exc.reason] += 1
        self.last_rejected = dict(counts)
        records = [r for r in records if r.problems]
        if not records:
            return None
        newest = max(r.round for r in records)
        candidates = sorted((r.peer_id, p.id, p) for r in records if r.round == newest
                            for p in r.problems)
        digest = hashlib.sha256(f"{round_number}:{self.peer_id}".encode()).digest()
        return candidates[int.from_bytes(digest[:8], "big") % len(candidates)][2]

    def publish_feedback(self, round_number: int, problem_id: str,
                         rewards: Sequence[float]) -> bool:
        counts: Counter[str] = Counter()
        try:
            # Clamped like rollout rewards: the range is part of the schema peers enforce.
            clamped = [max(-REWARD_BOUND, min(REWARD_BOUND, float(r)))
                       for r in rewards][:MAX_REWARDS]
            payload = encode_feedback(self.peer_id, round_number, problem_id, clamped)
        except (RecordError, TypeError, ValueError) as exc:
            log.warning("own feedback could not be encoded: %s", exc)
            self.last_rejected = {"own_record": 1}
            return False
        stored = self._store(SOLVER_KEY, payload, counts)
        self.last_rejected = dict(counts)
        return stored


# --- one proposer iteration --------------------------------------------------------------

class ProposerLoop:
    """Read feedback, adjust the difficulty, propose, publish: once per round."""

    def __init__(self, proposer: Any, channel: ProposerChannel,
                 sink: Callable[[dict], None] | None = None):
        self.proposer = proposer
        self.channel = channel
        self.sink = sink

    def step(self, round_number: int) -> dict:
        feedback = self.channel.read_feedback(since_round=0)  # the channel never repeats one
        mean_reward = None
        if feedback:
            # Mean of each solver's mean: a peer reporting many rewards gets no extra weight.
            mean_reward = sum(f.mean for f in feedback) / len(feedback)
            self.proposer.controller.record(mean_reward)
        rejected = dict(self.channel.last_rejected)
        problem = self.proposer.propose(round_number)
        published = self.channel.publish_problems(round_number, [problem]) if problem else []
        if self.channel.last_rejected:
            rejected = dict(Counter(rejected) + Counter(self.channel.last_rejected))
        summary = {
            "round": round_number,
            "difficulty": self.proposer.controller.level,
            "published": published[0] if published else None,
            "feedback": len(feedback),
            "mean_reward": mean_reward,
            "rejected": rejected,
        }
        if self.sink is not None:
            try:
                self.sink(summary)
            except Exception as exc:  # the UI's trouble must not stop the proposer
                log.warning("proposer event sink failed: %s", exc)
        return summary
