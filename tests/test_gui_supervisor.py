"""The process supervisor against real children: a tiny node, crashing and chunk-writing scripts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from desktop import events  # noqa: E402
from desktop.gui.context import AppContext  # noqa: E402
from desktop.gui.processes.children import NodeSupervisor, ServicesEndpoints, ServicesSupervisor  # noqa: E402
from desktop.gui.processes.supervisor import Outcome, ProcessSupervisor, ProcState, RestartPolicy  # noqa: E402

NODE_MS = 240_000  # the node imports torch: slow to start on a loaded 2-core machine
QUICK_MS = 30_000
ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """Everything a supervisor emits, in order."""

    def __init__(self, sup: ProcessSupervisor) -> None:
        self.states, self.events, self.json, self.logs = [], [], [], []
        self.outcomes, self.restarts, self.gave_up = [], [], []
        sup.state_changed.connect(self.states.append)
        sup.event.connect(self.events.append)
        sup.json_line.connect(self.json.append)
        sup.log_line.connect(lambda stream, text: self.logs.append((stream, text)))
        sup.finished.connect(self.outcomes.append)
        sup.restarting.connect(lambda attempt, delay: self.restarts.append((attempt, delay)))
        sup.gave_up.connect(self.gave_up.append)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


def script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def node_argv(tmp_path):
    ctx = AppContext.create(tmp_path / "data")
    config = tmp_path / "node.yaml"
    config.write_text("training:\n  max_new_tokens: 32\n")
    return lambda *extra: (lambda: ctx.node_command("--pool", "tiny", "--config", str(config), *extra))


@pytest.mark.slow
def test_tiny_node_runs_two_rounds(qtbot, node_argv):
    sup = NodeSupervisor(node_argv("--rounds", "2"))
    rec = Recorder(sup)
    statuses = []
    sup.status_changed.connect(statuses.append)
    with qtbot.waitSignal(sup.finished, timeout=NODE_MS) as blocker:
        assert sup.start()
        assert sup.state is ProcState.STARTING
        assert sup.pid
        assert not sup.start()  # one run at a time
    outcome: Outcome = blocker.args[0]
    assert rec.states == [ProcState.STARTING, ProcState.RUNNING, ProcState.STOPPED]
    types = [t for t in rec.types() if t != "log"]  # records may come before node_started
    assert types[0] == "node_started"
    assert types[-1] == "node_stopped"
    assert types.count("round_finished") == 2
    assert "log" in rec.types()
    assert outcome.ok
    assert outcome.exit_code == 0
    assert outcome.exit_status == "normal"
    assert not outcome.was_requested_stop
    assert outcome.restarts == 0
    assert outcome.last_error is None
    assert outcome.describe() == "The node stopped after round 1."
    status = sup.status
    assert status.name == next(e for e in rec.events if e["type"] == "node_started")["name"]
    assert status.peer_id.startswith("Qm")
    assert [row["round"] for row in status.history] == [0, 1]
    assert set(status.history[0]) == {"round", "reward_mean", "loss", "generate_s", "judge_s", "train_s", "comm_s",
                                         "skill"}
    assert status.total_reward == pytest.approx(sum(r["reward_mean"] for r in status.history))
    assert status.state == "stopped"
    assert statuses[-1].state == "stopped"
    assert statuses[-1] is not status  # listeners get snapshots, not the live object
    assert not rec.restarts
    assert not rec.gave_up
    assert sup.pid is None


def standin(*args: str) -> list[str]:
    """The stand-in node (tests/standin_node.py): the protocol without torch."""
    return [sys.executable, str(ROOT / "tests" / "standin_node.py"), *args]


@pytest.mark.slow
def test_graceful_stop_of_a_running_node(qtbot):
    sup = NodeSupervisor(lambda: standin("--round-seconds", "0.2"))
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: "round_finished" in rec.types(), timeout=QUICK_MS)
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.stop()
        assert sup.state is ProcState.STOPPING
    outcome = blocker.args[0]
    assert outcome.exit_code == 0
    assert outcome.exit_status == "normal"
    assert outcome.state is ProcState.STOPPED
    assert outcome.was_requested_stop
    assert outcome.ok
    assert rec.types()[-1] == "node_stopped"
    assert rec.events[-1]["reason"] == "sigterm"
    qtbot.wait(500)  # no restart may follow a requested stop
    assert sup.state is ProcState.STOPPED
    assert not rec.restarts
    assert len(rec.outcomes) == 1
    assert sup.status.state == "stopped"


@pytest.mark.slow
def test_finish_round_then_stop_completes_the_round_in_progress(qtbot):
    sup = NodeSupervisor(lambda: standin("--round-seconds", "0.5"))
    rec = Recorder(sup)
    asked = []
    sup.event.connect(lambda ev: ev["type"] == "round_started" and not asked and (
        asked.append(ev["round"]) or sup.finish_round_then_stop()))
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.start()
    outcome = blocker.args[0]
    assert outcome.ok
    assert outcome.was_requested_stop
    assert [e["round"] for e in rec.events if e["type"] == "round_finished"] == asked
    assert rec.events[-1]["reason"] == "finish-round"
    assert outcome.describe() == f"The node stopped after round {asked[0]}."


@pytest.mark.slow
def test_a_crash_mid_round_restarts_and_resumes_after_the_last_finished_round(qtbot, tmp_path):
    state = tmp_path / "standin.json"
    crash = ["--crash-in-round", "2", "--exit-code", "7"]
    policy = RestartPolicy(max_restarts=2, backoff_start=1.0)  # time to take the cue away before the restart
    sup = NodeSupervisor(lambda: standin("--state", str(state), "--rounds", "4", *crash), restart=policy)
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: len(rec.restarts) == 1, timeout=QUICK_MS)
    crashed = rec.outcomes[-1]
    assert crashed.state is ProcState.CRASHED
    assert crashed.exit_code == 7
    assert crashed.last_round == 1
    assert "crashing in round 2 on cue" in crashed.stderr_tail  # an ERROR record is what a crash report shows
    crash.clear()  # the next run plays on
    qtbot.waitUntil(lambda: len(rec.outcomes) == 2, timeout=QUICK_MS)
    assert rec.outcomes[-1].ok
    assert rec.outcomes[-1].restarts == 1
    started = [e["round"] for e in rec.events if e["type"] == "node_started"]
    assert started == [0, 2]  # resumed where the crash left it, no round played twice
    assert [row["round"] for row in sup.status.history] == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_a_hung_node_is_killed_when_stopped(qtbot):
    sup = NodeSupervisor(lambda: standin("--hang-in-round", "1"), stop_timeout=0.5)
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: rec.types().count("round_started") == 2, timeout=QUICK_MS)
    pid = sup.pid
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.stop()
    outcome = blocker.args[0]
    assert outcome.ok
    assert outcome.was_requested_stop
    assert outcome.exit_status == "crashed"  # SIGKILLed
    assert gone(pid)
    assert sup.state is ProcState.STOPPED
    assert not rec.restarts


@pytest.mark.slow
def test_finish_round_then_stop_on_the_real_node(qtbot, node_argv):
    sup = NodeSupervisor(node_argv())
    rec = Recorder(sup)
    asked = []

    def on_event(event):  # ask while a round is in progress: the node must complete it
        if event["type"] == "round_started" and not asked:
            asked.append(event["round"])
            sup.finish_round_then_stop()

    sup.event.connect(on_event)
    with qtbot.waitSignal(sup.finished, timeout=NODE_MS) as blocker:
        sup.start()
    outcome = blocker.args[0]
    assert outcome.exit_code == 0
    assert outcome.ok
    assert outcome.was_requested_stop
    finished = [e["round"] for e in rec.events if e["type"] == "round_finished"]
    assert finished == asked  # that round completed, and no other started
    assert rec.types().count("round_started") == 1
    assert rec.events[-1]["reason"] == "finish-round"
    assert ProcState.STOPPING in rec.states
    assert not rec.restarts
    assert outcome.describe() == f"The node stopped after round {asked[0]}."


@pytest.mark.slow
def test_crash_restarts_with_backoff_then_gives_up(qtbot):
    argv = script("""
        import sys
        print('boom', file=sys.stderr)
        sys.exit(3)
    """)
    policy = RestartPolicy(max_restarts=2, backoff_start=0.05, backoff_factor=2.0, backoff_max=1.0)
    sup = ProcessSupervisor("crasher", lambda: argv, restart=policy)
    rec = Recorder(sup)
    with qtbot.waitSignal(sup.gave_up, timeout=QUICK_MS) as blocker:
        sup.start()
    final = blocker.args[0]
    assert rec.restarts == [(1, pytest.approx(0.05)), (2, pytest.approx(0.1))]
    assert [o.restarts for o in rec.outcomes] == [0, 1, 2]
    assert all(o.state is ProcState.CRASHED and o.exit_code == 3 for o in rec.outcomes)
    assert final.exit_status == "normal"
    assert not final.ok
    assert not final.was_requested_stop
    assert "boom" in final.stderr_tail
    assert final.last_error == "boom"
    assert final.describe() == "The crasher crashed (exit code 3): boom"
    assert rec.states.count(ProcState.CRASHED) == 3
    assert sup.state is ProcState.CRASHED
    qtbot.wait(300)
    assert len(rec.outcomes) == 3  # nothing more after giving up


@pytest.mark.slow
def test_long_run_resets_restart_counter_and_stop_cancels_retry(qtbot):
    argv = script("import sys, time; time.sleep(0.2); sys.exit(1)")
    policy = RestartPolicy(max_restarts=1, backoff_start=0.05, reset_after=0.1)
    sup = ProcessSupervisor("flaky", lambda: argv, restart=policy)
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: len(rec.restarts) >= 3, timeout=QUICK_MS)
    assert {attempt for attempt, _ in rec.restarts} == {1}
    assert not rec.gave_up
    qtbot.waitUntil(lambda: sup.state is ProcState.CRASHED, timeout=QUICK_MS)
    sup.stop()  # cancels the pending restart
    assert sup.state is ProcState.STOPPED
    count = len(rec.outcomes)
    qtbot.wait(400)
    assert len(rec.outcomes) == count
    assert sup.state is ProcState.STOPPED


@pytest.mark.slow
def test_partial_lines_oversized_lines_and_garbage(qtbot):
    event = {"v": events.VERSION, "type": "warning", "ts": 1.0, "message": "split in two"}
    argv = script(f"""
        import sys, time
        line = {json.dumps(json.dumps(event))}
        sys.stdout.write(line[:17]); sys.stdout.flush(); time.sleep(0.4)
        sys.stdout.write(line[17:] + '\\n'); sys.stdout.flush()
        sys.stderr.write('half an err'); sys.stderr.flush(); time.sleep(0.2)
        sys.stderr.write('or line\\n'); sys.stderr.flush()
        print('garbage {{not json')
        print('{{"rpc_url": "http://x"}}')
        sys.stdout.write('x' * (3 << 20) + '\\n' + line + '\\n'); sys.stdout.flush()
        sys.stdout.write('no newline at the end')
    """)
    sup = ProcessSupervisor("writer", lambda: argv)
    rec = Recorder(sup)
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.start()
    assert blocker.args[0].ok
    assert rec.events == [event, event]
    assert rec.json == [{"rpc_url": "http://x"}]
    logs = [text for _, text in rec.logs]
    assert ("stderr", "half an error line") in rec.logs
    assert ("stdout", "garbage {not json") in rec.logs
    assert ("stdout", "no newline at the end") in rec.logs
    assert sum("dropped" in text for text in logs) == 1
    assert max(map(len, logs)) < 1000  # the 3 MiB line went nowhere


def family(parent_ignores_term: bool) -> list[str]:
    """A parent that leaves a grandchild ignoring SIGTERM; the parent dies on SIGTERM or not."""
    grandchild = ("import json, os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "print(json.dumps({'grandchild': os.getpid()}), flush=True); time.sleep(120)")
    return script(f"""
        import signal, subprocess, sys, time
        if {parent_ignores_term}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, '-c', {grandchild!r}])  # shares our stdout
        time.sleep(120)
    """)


@pytest.mark.slow
@pytest.mark.parametrize("parent_ignores_term", [False, True])
def test_no_child_left_behind(qtbot, tmp_path, parent_ignores_term):
    argv = family(parent_ignores_term)
    log = tmp_path / "logs" / "parent.log"
    sup = ProcessSupervisor("parent", lambda: argv, stop_timeout=0.5, log_path=log)
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: bool(rec.json), timeout=QUICK_MS)
    pid, grandchild = sup.pid, rec.json[0]["grandchild"]
    assert sup.state is ProcState.RUNNING
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.stop()
    outcome = blocker.args[0]
    assert outcome.ok
    assert outcome.was_requested_stop
    assert outcome.exit_status == "crashed"
    qtbot.waitUntil(lambda: gone(pid) and gone(grandchild), timeout=10_000)
    assert "grandchild" in log.read_text()


def test_shutdown_blocks_until_the_whole_group_is_gone(qtbot):
    argv = family(parent_ignores_term=True)
    sup = ProcessSupervisor("parent", lambda: argv)
    rec = Recorder(sup)
    sup.start()
    qtbot.waitUntil(lambda: bool(rec.json), timeout=QUICK_MS)
    pid, grandchild = sup.pid, rec.json[0]["grandchild"]
    sup.shutdown(timeout=0.3)  # what the app calls on quit: no event loop runs afterwards
    assert sup.state is ProcState.STOPPED
    assert rec.outcomes[-1].was_requested_stop
    assert gone(pid)
    qtbot.waitUntil(lambda: gone(grandchild), timeout=2_000)  # SIGKILLed already: only reaping is left
    assert not rec.restarts


def test_services_ready_restart_and_stop(qtbot):
    ready = events.encode(events.make("services_ready", rpc_url="http://127.0.0.1:8545", contract="0xabc",
                                      login_url="http://127.0.0.1:3000", api_token_file="/tmp/token"))
    argv = script(f"""
        import json, time
        print({json.dumps(ready)}, flush=True)
        print(json.dumps({{"rpc_url": "a JSON line that is no event is not mistaken for the ready line"}}), flush=True)
        print(json.dumps({{"level": "info", "msg": "round keeper up"}}), flush=True)
        time.sleep(120)
    """)
    sup = ServicesSupervisor(lambda: argv)
    rec = Recorder(sup)
    with qtbot.waitSignal(sup.ready, timeout=QUICK_MS) as blocker:
        sup.start()
    expected = ServicesEndpoints("http://127.0.0.1:8545", "0xabc", "http://127.0.0.1:3000", "/tmp/token")
    assert blocker.args[0] == expected == sup.info
    qtbot.waitUntil(lambda: len(rec.json) == 2, timeout=QUICK_MS)  # the two that are not events
    assert sup.state is ProcState.RUNNING
    assert sup.info == expected
    first = sup.pid
    with qtbot.waitSignal(sup.ready, timeout=QUICK_MS):
        sup.restart()
    assert sup.pid != first
    assert rec.outcomes[-1].ok
    with qtbot.waitSignal(sup.finished, timeout=QUICK_MS) as blocker:
        sup.stop()
    assert blocker.args[0].ok
    assert sup.state is ProcState.STOPPED
    assert rec.states == [ProcState.STARTING, ProcState.RUNNING, ProcState.STOPPING, ProcState.STOPPED] * 2


def test_missing_program_is_a_failed_start(qtbot, tmp_path):
    sup = ProcessSupervisor("tool", lambda: [str(tmp_path / "no-such-program")],
                            restart=RestartPolicy(max_restarts=0))
    with qtbot.waitSignal(sup.gave_up, timeout=QUICK_MS) as blocker:
        sup.start()
    outcome = blocker.args[0]
    assert outcome.exit_code is None
    assert outcome.state is ProcState.CRASHED
    assert outcome.describe().startswith("The tool could not start")


def test_module_stays_light():
    code = ("import sys, desktop.gui.processes.supervisor; "
            "print([m for m in ('torch', 'transformers', 'hivemind') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_start_reads_the_environment_afresh(qtbot):
    # The tray's Start, the dashboard's and the app flow's are one path: the supervisor asks for the
    # environment (the Hugging Face token) at every start, so a token saved since is passed on.
    current = {"HF_TOKEN": "first"}
    argv = script("""
        import os
        print('token=' + os.environ.get('HF_TOKEN', '-'))
    """)
    sup = ProcessSupervisor("env", lambda: argv, env_factory=lambda: dict(current))
    rec = Recorder(sup)
    for value in ("first", "second"):
        current["HF_TOKEN"] = value
        with qtbot.waitSignal(sup.finished, timeout=QUICK_MS):
            sup.start()
    assert [text for _, text in rec.logs if text.startswith("token=")] == ["token=first", "token=second"]
