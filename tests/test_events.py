import io
import json
import subprocess
import sys

import pytest

from desktop import events


def test_every_type_round_trips_through_a_line():
    samples = {
        "node_started": dict(peer_id="Qm1", name="a b c", model="tiny:tiny", device="cpu", round=0, role="solver"),
        "download": dict(model="m", file="f", downloaded=1, total=None),
        "round_started": dict(round=1, stage=0, problems=1),
        "rollouts": dict(round=1, own=2, received=0, peers=[], rejected={}),
        "dht_ready": dict(peer_id="Qm1", maddrs=["/ip4/127.0.0.1/tcp/1/p2p/Qm1"]),
        "rewards": dict(round=1, mean=0.1, own=[0.1], transplanted=[]),
        "train_step": dict(round=1, loss=None, seconds=0.1, skipped=True, samples=2),
        "round_finished": dict(round=1, seconds=1, generate_s=0.5, judge_s=0.2, train_s=0.3, comm_s=0, reward_mean=0.0),
        "checkpoint": dict(round=1, path="/x", seconds=0.1),
        "joined_round": dict(round=5, previous=2),
        "hf_push": dict(round=1, repo="u/r", ok=False),
        "proposer": dict(round=1, difficulty=2, published=None, feedback=0, mean_reward=None, rejected={}),
        "chain_submitted": dict(round=1, sent=2, already=0, failed=0, pending=0, error=None),
        "chain_queued": dict(round=1, reward=3, rounds=2),
        "chain_status": dict(reachable=False, message="the chain cannot be reached"),
        "warning": dict(message="w"),
        "error": dict(message="e"),
        "node_stopped": dict(reason="finished", round=1, exit_code=0),
    }
    assert set(samples) == events.EVENT_TYPES
    for etype, fields in samples.items():
        line = events.encode(events.make(etype, **fields))
        back = events.decode(line)
        assert back["type"] == etype and back["v"] == events.VERSION and back["ts"] > 0


@pytest.mark.parametrize("line", [
    "not json", "[]", '{"v": 99, "type": "warning", "ts": 1, "message": "x"}',
    '{"v": 1, "type": "warning", "ts": 1, "message": "protocol 1: before timings were named *_s"}',
    '{"v": 2, "type": "nope", "ts": 1}', '{"v": 2, "type": "warning", "ts": 1}',
    '{"v": 2, "type": "warning", "ts": 1, "message": 5}',
    '{"v": 2, "type": "round_started", "ts": 1, "round": true, "stage": 0, "problems": 1}',
])
def test_invalid_lines_are_rejected(line):
    with pytest.raises(events.EventError):
        events.decode(line)


def test_make_refuses_missing_fields():
    with pytest.raises(events.EventError):
        events.make("round_started", round=1)


def test_sink_writes_lines_and_notifies_listeners():
    out = io.StringIO()
    sink = events.EventSink(out)
    seen = []
    sink.subscribe(seen.append)
    sink.emit("warning", message="hello")
    assert json.loads(out.getvalue())["message"] == "hello" and seen[0]["type"] == "warning"


def test_event_module_imports_nothing_heavy():
    code = ("import sys, desktop.events, desktop.config, desktop.paths, desktop.identity;"
            "heavy = [m for m in ('torch', 'transformers', 'hivemind') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_broken_stream_stops_the_node_instead_of_crashing_it():
    """The app reading a node's events is killed: writes fail with EPIPE. The node is told once
    (it stops at its next safe point) and keeps its in-process listeners."""

    class Gone:
        def write(self, _):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    told, heard = [], []
    sink = events.EventSink(Gone(), on_broken=lambda: told.append(1))
    sink.subscribe(heard.append)
    for _ in range(3):
        sink.emit("warning", message="x")
    assert told == [1] and len(heard) == 3
