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
        "train_step": dict(round=1, loss=None, seconds=0.1, skipped=True, samples=2, own_logp=-0.4, external_logp=None,
                           external_share=0.0),
        "skill": dict(round=10, pass_rate=0.25, reward=-0.1, problems=16, seconds=2.5),
        "round_finished": dict(round=1, seconds=1, generate_s=0.5, judge_s=0.2, train_s=0.3, comm_s=0, reward_mean=0.0),
        "checkpoint": dict(round=1, path="/x", seconds=0.1),
        "joined_round": dict(round=5, previous=2),
        "hf_push": dict(round=1, repo="u/r", ok=False),
        "proposer": dict(round=1, difficulty=2, published=None, feedback=0, mean_reward=None, rejected={}),
        "chain_submitted": dict(round=1, sent=2, already=0, failed=0, pending=0, error=None),
        "chain_queued": dict(round=1, reward=3, rounds=2),
        "chain_status": dict(reachable=False, message="the chain cannot be reached"),
        "log": dict(level="INFO", logger="desktop.node", message="m"),
        "services_ready": dict(rpc_url="http://127.0.0.1:8545", contract="0x0", login_url="http://127.0.0.1:3000",
                               api_token_file="/t"),
        "hosting": dict(name="lab", rpc="http://10.0.0.2:8546", boot=["/ip4/10.0.0.2/tcp/4001/p2p/Qm1"],
                        address="10.0.0.2", rpc_answers=True, dht_answers=False, error=None),
        "paused": dict(round=3, reason="idle", when="now", detail="the computer is in use"),
        "resumed": dict(round=3, reason="idle", seconds=12.5),
        "warning": dict(message="w"),
        "error": dict(message="e"),
        "node_stopped": dict(reason="finished", round=1, exit_code=0),
    }
    assert set(samples) == events.EVENT_TYPES
    for etype, fields in samples.items():
        line = events.encode(events.make(etype, **fields))
        back = events.decode(line)
        assert back["type"] == etype
        assert back["v"] == events.VERSION
        assert back["ts"] > 0


@pytest.mark.parametrize("line", [
    "not json", "[]", '{"v": 99, "type": "warning", "ts": 1, "message": "x"}',
    '{"v": 1, "type": "warning", "ts": 1, "message": "protocol 1: before timings were named *_s"}',
    '{"v": 2, "type": "log", "ts": 1, "level": "INFO", "logger": "x", "message": "protocol 2: no records"}',
    '{"v": 3, "type": "paused", "ts": 1, "round": 1, "reason": "user", "when": "now", "detail": "protocol 3: no pauses"}',
    '{"v": 5, "type": "nope", "ts": 1}', '{"v": 5, "type": "warning", "ts": 1}',
    '{"v": 5, "type": "warning", "ts": 1, "message": 5}',
    '{"v": 5, "type": "round_started", "ts": 1, "round": true, "stage": 0, "problems": 1}',
    '{"v": 5, "type": "log", "ts": 1, "level": 20, "logger": "x", "message": "m"}',
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
    assert json.loads(out.getvalue())["message"] == "hello"
    assert seen[0]["type"] == "warning"


def test_event_module_imports_nothing_heavy():
    code = ("import sys, desktop.events, desktop.config, desktop.utils.paths, desktop.identity;"
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
    assert told == [1]
    assert len(heard) == 3


def test_records_become_log_events_with_level_logger_and_no_secret(monkeypatch):
    import logging

    from desktop.utils.logs import EventHandler

    out = io.StringIO()
    sink = events.EventSink(out)
    logger = logging.getLogger("desktop.test_records")
    handler = EventHandler(sink.emit)
    logger.addHandler(handler)
    renamed = logging.getLevelName(logging.WARNING)
    logging.addLevelName(logging.WARNING, "WARN")  # as a library may (the protocol keeps its own names)
    try:
        logger.warning("token=%s", "hf_" + "a" * 30)
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("step failed")
        logger.debug("below the handler's level")
    finally:
        logger.removeHandler(handler)
        logging.addLevelName(logging.WARNING, renamed)
    warned, failed = (events.decode(line) for line in out.getvalue().splitlines())
    assert (warned["level"], warned["logger"]) == ("WARNING", "desktop.test_records")
    assert "hf_aaaa" not in warned["message"]
    assert "[REDACTED]" in warned["message"]
    assert failed["level"] == "ERROR"
    assert failed["message"].splitlines()[-1] == "ValueError: bad"


@pytest.mark.slow
def test_services_announce_themselves_and_log_as_events(tmp_path):
    from tests.procs import CLI, env, free_port

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\n")
    refused = subprocess.run(CLI + ["services", "--log-events", "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, env=env(), timeout=60)
    assert refused.returncode == 2
    assert "--log-events needs --json" in refused.stderr
    proc = subprocess.Popen(CLI + ["services", "--json", "--log-events", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        seen = [events.decode(proc.stdout.readline()) for _ in range(1)]
        while seen[-1]["type"] != "services_ready":  # records may come first; every line is an event
            seen.append(events.decode(proc.stdout.readline()))
        ready = seen[-1]
        assert ready["rpc_url"].startswith("http://127.0.0.1:")
        assert ready["contract"].startswith("0x")
        records = [e for e in seen if e["type"] == "log"]
        assert any(r["level"] == "INFO" and "login server on" in r["message"] for r in records), seen
    finally:
        proc.terminate()
        proc.wait(60)
    assert proc.returncode == 0


def test_a_diverged_number_never_breaks_the_stream():
    out = io.StringIO()
    sink = events.EventSink(out, on_broken=lambda: pytest.fail("a NaN is not a broken pipe"))
    sink.emit("train_step", round=1, loss=float("nan"), seconds=0.1, skipped=False, samples=2, own_logp=float("-inf"),
              external_logp=None, external_share=0.0)
    assert events.decode(out.getvalue())["loss"] is None  # JSON has no NaN: None, as for a skipped step
    assert events.decode(out.getvalue())["own_logp"] is None
    with pytest.raises(events.EventError, match="not a finite number"):
        sink.emit("round_finished", round=1, seconds=float("inf"), generate_s=0, judge_s=0, train_s=0, comm_s=0,
                  reward_mean=0)
    sink.emit("warning", message="still writing")
    assert events.decode(out.getvalue().splitlines()[-1])["message"] == "still writing"
