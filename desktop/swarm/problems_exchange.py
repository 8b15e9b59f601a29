"""CodeZero's proposer <-> solver traffic over the DHT (wire schema version 2).

Proposers keep their latest problems under their own key and announce themselves in the roster
with role "proposer"; solvers find them there, and send their rewards on a problem to the
proposer's feedback shards. Like rollouts (``records``), no key holds what the whole swarm
publishes. Wire formats, msgpack, each in its publisher's signed ``[owner:…]`` subkey:

    problems/<proposer>                  {"v": 2, "kind": "problems", "peer_id", "round",
        "problems": [{"id", "question", "tests", "entry_point", "difficulty": 0..4}]}  (<= 4)
    feedback/<proposer>/<bucket(solver)> {"v": 2, "kind": "feedback", "peer_id", "round",
        "proposer", "problem_id", "rewards": [float in [-10, 10]]}

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

from desktop.codezero.problems import LEVELS, Problem

from .owner import signed_record
from .records import (REWARD_BOUND, ROSTER_BUCKETS, VERSION, RecordError, bucket_of, check_envelope,
                      check_str, is_int, unpack)

log = logging.getLogger(__name__)

MAX_PROBLEMS = 4
MAX_QUESTION_CHARS = 8_000
MAX_TESTS_CHARS = 16_000
MAX_ID_CHARS = 128
MAX_REWARDS = 16  # the bounded unpacker allows no longer list anyway
MAX_PROPOSERS_READ = 4  # proposers a solver reads per round
EXPIRATION_S = 600.0

_PROBLEMS_KEYS = frozenset({"v", "kind", "peer_id", "round", "problems"})
_PROBLEM_KEYS = frozenset({"id", "question", "tests", "entry_point", "difficulty"})
_FEEDBACK_KEYS = frozenset({"v", "kind", "peer_id", "round", "proposer", "problem_id", "rewards"})


def problems_key(proposer: str) -> str:
    return f"problems/{proposer}"


def feedback_key(proposer: str, solver: str) -> str:
    return f"feedback/{proposer}/{bucket_of(solver)}"


@dataclass(frozen=True)
class ProposerRecord:
    peer_id: str
    round: int
    problems: list[Problem]


@dataclass(frozen=True)
class Feedback:
    peer_id: str
    round: int
    proposer: str
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
        "v": VERSION, "kind": "problems", "peer_id": peer_id, "round": round_number,
        "problems": [{"id": p.id, "question": p.question, "tests": p.tests,
                      "entry_point": p.entry_point, "difficulty": p.difficulty} for p in problems],
    }, use_bin_type=True)


def encode_problems(peer_id: str, round_number: int, problems: Sequence[Problem]) -> bytes:
    """Our own proposer record; raises RecordError if peers would refuse it."""
    data = _pack_problems(peer_id, round_number, problems)
    decode_problems(data)  # the readers' rules
    return data


def _decode_problem(raw: Any, proposer: str, round_number: int) -> Problem:
    if type(raw) is not dict or set(raw) != _PROBLEM_KEYS:
        raise RecordError("schema", "problem keys")
    problem_id = check_str(raw["id"], MAX_ID_CHARS, "id")
    question = check_str(raw["question"], MAX_QUESTION_CHARS, "question")
    tests = check_str(raw["tests"], MAX_TESTS_CHARS, "tests")
    entry_point, difficulty = raw["entry_point"], raw["difficulty"]
    if entry_point is not None:
        entry_point = check_str(entry_point, MAX_ID_CHARS, "entry_point")
        if not entry_point.isidentifier():
            raise RecordError("schema", "entry_point is not a Python name")
    if not problem_id or not question.strip() or not tests.strip():
        raise RecordError("schema", "empty id, question or tests")
    if not is_int(difficulty) or not 0 <= difficulty < LEVELS:
        raise RecordError("schema", "difficulty")
    return Problem(id=problem_id, question=question, tests=tests, entry_point=entry_point,
                   difficulty=difficulty, source="proposer", ref=("proposer", proposer, round_number, problem_id))


def decode_problems(data: Any, *, expected_round: int | None = None, round_window: int = 0,
                    expected_peer_id: str | None = None) -> ProposerRecord:
    """Parse an untrusted proposer record (from rounds expected_round - round_window ..
    expected_round, when given); raises only RecordError."""
    obj = unpack(data)
    peer_id, round_number = check_envelope(obj, _PROBLEMS_KEYS, "problems", expected_peer_id)
    problems = obj["problems"]
    if type(problems) is not list:
        raise RecordError("schema", "problems is not a list")
    if len(problems) > MAX_PROBLEMS:
        raise RecordError("oversized", f"more than {MAX_PROBLEMS} problems")
    # Round checks before decoding the problems: a stale record needs no more work.
    if expected_round is not None and round_number > expected_round:
        raise RecordError("future_round", f"round {round_number}")
    if expected_round is not None and round_number < expected_round - round_window:
        raise RecordError("stale_round", f"round {round_number}")
    decoded = [_decode_problem(raw, peer_id, round_number) for raw in problems]
    if len({p.id for p in decoded}) != len(decoded):
        raise RecordError("schema", "duplicate problem id")
    return ProposerRecord(peer_id, round_number, decoded)


def encode_feedback(peer_id: str, round_number: int, proposer: str, problem_id: str,
                    rewards: Sequence[float]) -> bytes:
    """Our own solver record; raises RecordError if peers would refuse it."""
    data = msgpack.packb({"v": VERSION, "kind": "feedback", "peer_id": peer_id, "round": round_number,
                          "proposer": proposer, "problem_id": problem_id,
                          "rewards": [float(r) for r in rewards]}, use_bin_type=True)
    decode_feedback(data)
    return data


def decode_feedback(data: Any, *, expected_peer_id: str | None = None) -> Feedback:
    """Parse an untrusted solver record; raises only RecordError."""
    obj = unpack(data)
    peer_id, round_number = check_envelope(obj, _FEEDBACK_KEYS, "feedback", expected_peer_id)
    proposer = check_str(obj["proposer"], 128, "proposer")
    problem_id = check_str(obj["problem_id"], MAX_ID_CHARS, "problem_id")
    rewards = obj["rewards"]
    if type(rewards) is not list or not 1 <= len(rewards) <= MAX_REWARDS:
        raise RecordError("schema", "rewards is not a non-empty list")
    for r in rewards:
        if type(r) is not float or not math.isfinite(r) or abs(r) > REWARD_BOUND:
            raise RecordError("schema", "reward is not a finite float in range")
    return Feedback(peer_id, round_number, proposer, problem_id, list(rewards))


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
            log.warning("no DHT peer accepted our %s record", key.split("/")[0])
        except Exception as exc:  # a network hiccup must not stop training
            log.warning("publishing the %s record failed: %s", key.split("/")[0], exc)
        problems["dht_error"] += 1
        return False

    def _signed_records(self, keys: list[str], decode, counts: Counter, owners=None) -> list:
        """The records under ``keys`` whose subkey proves who wrote them (swarm.owner.signed_record),
        refusals counted by reason."""
        try:
            found = self.dht.get_many(keys)
        except Exception as exc:
            log.debug("reading %s failed: %s", keys[:2], exc)
            counts["dht_error"] += 1
            return []
        records = []
        for key in keys:
            for subkey, value in found.get(key, {}).items():
                record, reason = signed_record(subkey, value, decode, owners)
                if reason is not None:
                    log.debug("refused a record under %s: %s", key, reason)
                    counts[reason] += 1
                else:
                    records.append(record)
        return records


class ProposerChannel(_Channel):
    """The proposer's side: publish problems, read the solvers' rewards for them."""

    def __init__(self, dht: Any, peer_id: str, directory=None, expiration: float = EXPIRATION_S,
                 remember: int = 256):
        super().__init__(dht, peer_id, expiration)
        self.directory = directory  # announces this peer with role "proposer" where solvers look
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
        if payload is not None and self._store(problems_key(self.peer_id), payload, counts):
            published = [p.id for p in fitting]
            for problem_id in published:
                self._ours[problem_id] = round_number
                self._ours.move_to_end(problem_id)
            while len(self._ours) > self._remember:
                self._ours.popitem(last=False)
        if self.directory is not None:
            self.directory.announce(round_number)
        self.last_rejected = dict(counts)
        return published

    def read_feedback(self, since_round: int = 0) -> list[Feedback]:
        """New, valid feedback on our problems from rounds >= since_round, each (peer, round,
        problem) once across calls. Feedback on other proposers' problems is skipped quietly."""
        counts: Counter[str] = Counter()
        fresh = []
        keys = [f"feedback/{self.peer_id}/{b}" for b in range(ROSTER_BUCKETS)]
        for feedback in self._signed_records(keys, lambda data, who: decode_feedback(data, expected_peer_id=who),
                                             counts):
            ident = (feedback.peer_id, feedback.round, feedback.problem_id)
            if (feedback.proposer != self.peer_id or feedback.problem_id not in self._ours
                    or feedback.round < since_round or ident in self._seen):
                continue
            self._seen[ident] = None
            fresh.append(feedback)
        while len(self._seen) > 4 * self._remember:
            self._seen.popitem(last=False)
        self.last_rejected = dict(counts)
        return sorted(fresh, key=lambda f: (f.round, f.peer_id, f.problem_id))


class SolverChannel(_Channel):
    """The solver's side: fetch a proposer's problem for this round, report rewards on it, and
    rebuild the proposer problems other peers' rollouts refer to.

    Our own proposer record is not skipped: one node may play both roles in a local swarm."""

    def __init__(self, dht: Any, peer_id: str, directory, round_window: int = 3,
                 expiration: float = EXPIRATION_S, remember: int = 64):
        super().__init__(dht, peer_id, expiration)
        self.directory = directory
        self.round_window = round_window
        self._problems: OrderedDict[tuple, Problem] = OrderedDict()  # ref -> problem, seen lately
        self._remember = remember

    def _read(self, proposers: list[str], round_number: int | None, counts: Counter) -> list[ProposerRecord]:
        def decode(data, publisher):
            return decode_problems(data, expected_round=round_number, round_window=self.round_window,
                                   expected_peer_id=publisher)

        records = self._signed_records([problems_key(p) for p in proposers], decode, counts, owners=set(proposers))
        for record in records:
            for problem in record.problems:
                self._problems[problem.ref] = problem
                self._problems.move_to_end(problem.ref)
        while len(self._problems) > self._remember:
            self._problems.popitem(last=False)
        return records

    def fetch_problem(self, round_number: int) -> Problem | None:
        """A problem from the newest valid proposer records within the round window.

        When several problems are equally new, the pick is a hash of (round, our peer id):
        the same for every call, yet spread so that solvers don't all pile on one proposer.
        """
        counts: Counter[str] = Counter()
        proposers = sorted(e.peer_id for e in self.directory.entries(role="proposer"))
        if self.directory.role == "proposer":
            proposers.append(self.peer_id)
        if len(proposers) > MAX_PROPOSERS_READ:
            proposers = self.directory.rng.sample(proposers, MAX_PROPOSERS_READ)
        records = [r for r in self._read(proposers, round_number, counts) if r.problems] if proposers else []
        self.last_rejected = dict(counts)
        if not records:
            return None
        newest = max(r.round for r in records)
        candidates = sorted((r.peer_id, p.id, p) for r in records if r.round == newest for p in r.problems)
        digest = hashlib.sha256(f"{round_number}:{self.peer_id}".encode()).digest()
        return candidates[int.from_bytes(digest[:8], "big") % len(candidates)][2]

    def lookup(self, ref: tuple) -> Problem | None:
        """The proposer problem ``ref`` names, if its proposer published it lately."""
        ref = tuple(ref)
        if ref not in self._problems and len(ref) == 4 and ref[0] == "proposer":
            self._read([ref[1]], None, Counter())
        return self._problems.get(ref)

    def publish_feedback(self, round_number: int, problem: Problem, rewards: Sequence[float]) -> bool:
        counts: Counter[str] = Counter()
        proposer = problem.ref[1] if problem.ref and problem.ref[0] == "proposer" else None
        try:
            if proposer is None:
                raise ValueError("not a proposer's problem")
            # Clamped like rollout rewards: the range is part of the schema peers enforce.
            clamped = [max(-REWARD_BOUND, min(REWARD_BOUND, float(r))) for r in rewards][:MAX_REWARDS]
            payload = encode_feedback(self.peer_id, round_number, proposer, problem.id, clamped)
        except (RecordError, TypeError, ValueError) as exc:
            log.warning("own feedback could not be encoded: %s", exc)
            self.last_rejected = {"own_record": 1}
            return False
        stored = self._store(feedback_key(proposer, self.peer_id), payload, counts)
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
