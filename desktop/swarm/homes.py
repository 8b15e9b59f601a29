"""Where a record must live: the one key each kind of swarm record may be stored under. Above
both record modules (rollouts and the roster in records, proposer problems and feedback in
problems_exchange), so neither needs the other; the DHT's validator asks it of every store."""

from __future__ import annotations

from typing import Any

from desktop.swarm import problems_exchange as px

from .records import RecordError, bucket_of, decode_roster, decode_rollouts, rollouts_key, roster_key, unpack


def home_key(data: Any) -> tuple[str, str]:
    """(the only key this record may be stored under, its publisher), after a full decode of any
    kind of swarm record; RecordError when it is not a valid one."""
    obj = unpack(data)
    kind = obj.get("kind") if type(obj) is dict else None
    if kind == "rollouts":
        record = decode_rollouts(data)
        return rollouts_key(record.peer_id), record.peer_id
    if kind == "roster":
        entry = decode_roster(data)
        return roster_key(bucket_of(entry.peer_id)), entry.peer_id
    if kind == "problems":
        problems = px.decode_problems(data)
        return px.problems_key(problems.peer_id), problems.peer_id
    if kind == "feedback":
        feedback = px.decode_feedback(data)
        return px.feedback_key(feedback.proposer, feedback.peer_id), feedback.peer_id
    raise RecordError("schema", "unknown kind")
