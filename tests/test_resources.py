"""When the node may work: the policy's table of cases, the user's pause file, the gate, the
memory watch and the idle probe (X11 under a real Xvfb where it is installed)."""

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime

import pytest

from desktop.machine import pause_control
from desktop.config import ConfigError, ResourcesConfig, load_config
from desktop.events import EventSink, decode
from desktop.machine.idle import IdleProbe, x11_idle
from desktop.node.pause import Governor, MemoryWatch, PauseGate, RoundAbandoned
from desktop.machine.work_window import Decision, Inputs, decide, in_schedule

MON_10 = datetime(2026, 11, 30, 10, 0)   # a Monday
SUN_23 = datetime(2026, 12, 6, 23, 30)   # a Sunday night


def rc(**kw) -> ResourcesConfig:
    return ResourcesConfig(**kw)


# --- the policy: a pure function, tested as a table ---------------------------------------------

CASES = [
    # (settings, inputs, now) -> (run, reason, when)
    ("defaults run", rc(), Inputs(), MON_10, (True, None)),
    ("user now", rc(), Inputs(user="now"), MON_10, (False, "user", "now")),
    ("user after round", rc(), Inputs(user="after-round"), MON_10, (False, "user", "after-round")),
    ("user pause expired", rc(), Inputs(user="now", user_until=MON_10.timestamp() - 1), MON_10, (True, None)),
    ("user pause not yet expired", rc(), Inputs(user="now", user_until=MON_10.timestamp() + 60), MON_10,
     (False, "user", "now")),
    ("user beats memory", rc(), Inputs(user="after-round", memory_low=True), MON_10, (False, "user", "after-round")),
    ("memory", rc(), Inputs(memory_low=True), MON_10, (False, "memory", "now")),
    ("memory beats battery", rc(), Inputs(memory_low=True, on_battery=True), MON_10, (False, "memory", "now")),
    ("battery", rc(), Inputs(on_battery=True), MON_10, (False, "battery", "now")),
    ("battery, allowed", rc(pause_on_battery=False), Inputs(on_battery=True), MON_10, (True, None)),
    ("battery unknown", rc(), Inputs(on_battery=None), MON_10, (True, None)),
    ("inside schedule", rc(schedule=True, run_from="09:00", run_until="17:00"), Inputs(), MON_10, (True, None)),
    ("outside schedule", rc(schedule=True, run_from="18:00", run_until="23:00"), Inputs(), MON_10,
     (False, "schedule", "now")),
    ("schedule off ignores window", rc(schedule=False, run_from="18:00", run_until="23:00"), Inputs(), MON_10,
     (True, None)),
    ("not today", rc(schedule=True, run_days=["sat", "sun"]), Inputs(), MON_10, (False, "schedule", "now")),
    ("past midnight, started yesterday", rc(schedule=True, run_from="22:00", run_until="06:00", run_days=["sun"]),
     Inputs(), datetime(2026, 12, 7, 5, 0), (True, None)),
    ("past midnight, ended", rc(schedule=True, run_from="22:00", run_until="06:00", run_days=["sun"]),
     Inputs(), datetime(2026, 12, 7, 6, 0), (False, "schedule", "now")),
    ("past midnight, evening", rc(schedule=True, run_from="22:00", run_until="06:00", run_days=["sun"]),
     Inputs(), SUN_23, (True, None)),
    ("in use", rc(only_when_idle=True, idle_minutes=5), Inputs(idle_s=10), MON_10, (False, "idle", "now")),
    ("idle long enough", rc(only_when_idle=True, idle_minutes=5), Inputs(idle_s=301), MON_10, (True, None)),
    ("idle unknown never pauses", rc(only_when_idle=True), Inputs(idle_s=None), MON_10, (True, None)),
    ("idle not asked", rc(only_when_idle=False), Inputs(idle_s=0), MON_10, (True, None)),
    ("schedule beats idle", rc(schedule=True, run_days=["sun"], only_when_idle=True), Inputs(idle_s=0), MON_10,
     (False, "schedule", "now")),
]


@pytest.mark.parametrize("name,settings,inputs,now,expected", CASES, ids=[c[0] for c in CASES])
def test_policy_table(name, settings, inputs, now, expected):
    d = decide(settings, inputs, now)
    assert (d.run, d.reason) == expected[:2]
    if not d.run:
        assert d.when == expected[2]
        assert d.detail


def test_an_unknown_idle_time_is_said_not_guessed():
    d = decide(rc(only_when_idle=True), Inputs(idle_s=None), MON_10)
    assert d.run
    assert any("does not tell how long" in n for n in d.notes)
    assert decide(rc(only_when_idle=True), Inputs(idle_s=3), MON_10).notes == ()


def test_schedule_of_a_whole_day():
    assert in_schedule("00:00", "00:00", ["mon"], MON_10)
    assert not in_schedule("00:00", "00:00", ["tue"], MON_10)


@pytest.mark.parametrize("bad", ["24:00", "9", "09:5", "ab:cd", "12:60"])
def test_bad_times_are_refused_by_the_config(bad):
    with pytest.raises(ConfigError, match="run_from"):
        load_config(overrides={"resources.run_from": bad})


# --- the user's pause file ---------------------------------------------------------------------

def test_pause_file_round_trip(tmp_path):
    path = pause_control.control_path(tmp_path)
    assert not pause_control.read(path).active()
    pause_control.pause(path, "after-round", until=time.time() + 60)
    got = pause_control.read(path)
    assert (got.when, got.active()) == ("after-round", True)
    assert not got.active(now=time.time() + 120)
    pause_control.resume(path)
    assert not path.exists()
    pause_control.resume(path)  # resuming twice is fine


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"when": "forever"}', b'{"when": 1}', b"\xff\xfe",
                                     b'{"when": "now", "until": "soon"}', b" " * 5000])
def test_a_foreign_pause_file_is_no_pause_or_a_plain_one(tmp_path, content):
    path = pause_control.control_path(tmp_path)
    path.write_bytes(content)
    got = pause_control.read(path)
    assert got.until is None
    assert got.when in (None, "now")
    assert got.when == ("now" if content.startswith(b'{"when": "now"') else None)


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("15", 900)])
def test_durations(text, seconds):
    assert pause_control.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "-1h", "0", "400d", "1w"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        pause_control.parse_duration(text)


def test_tomorrow_morning_is_tomorrow_at_eight():
    now = datetime(2026, 12, 31, 22, 15).timestamp()
    assert datetime.fromtimestamp(pause_control.tomorrow_morning(now)) == datetime(2027, 1, 1, 8, 0)


# --- the gate and the governor -------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.events = []

    def emit(self, type_, **fields):
        self.events.append({"type": type_, **fields})


def test_gate_holds_a_step_and_lets_go_on_resume():
    sink, stop = Recorder(), threading.Event()
    gate = PauseGate(sink, stop, poll=0.05)
    gate.set(Decision(False, "user", "now", "paused by you"))
    done = threading.Event()
    threading.Thread(target=lambda: (gate.wait(3, at="step"), done.set()), daemon=True).start()
    assert not done.wait(0.5)
    gate.set(Decision(True))
    assert done.wait(5)
    assert [e["type"] for e in sink.events] == ["paused", "resumed"]
    assert sink.events[0]["reason"] == "user" and sink.events[1]["seconds"] >= 0.4


def test_after_round_pause_only_holds_between_rounds():
    gate = PauseGate(Recorder(), threading.Event())
    gate.set(Decision(False, "user", "after-round", "x"))
    assert not gate.holds("step")
    assert gate.holds("round")


def test_memory_pause_abandons_the_round_and_stop_ends_the_wait():
    sink, stop = Recorder(), threading.Event()
    gate = PauseGate(sink, stop, poll=0.05)
    gate.set(Decision(False, "memory", "now", "only 100 MB free"))
    with pytest.raises(RoundAbandoned, match="100 MB"):
        gate.wait(1, at="step")
    threading.Timer(0.3, stop.set).start()
    gate.wait(2, at="round")  # returns on stop, without a "resumed"
    assert [e["type"] for e in sink.events] == ["paused"]


def test_memory_watch_has_slack_before_it_clears():
    reading = {"rss": 900.0, "avail": 5000.0}
    watch = MemoryWatch(limit_mb=1000, min_free_percent=10, read=lambda: (reading["rss"], reading["avail"], 10000.0))
    assert not watch.check()
    reading["rss"] = 1100
    assert watch.check() and "over its limit" in watch.detail
    reading["rss"] = 950  # under the cap, but not 10 % under: still low
    assert watch.check()
    reading["rss"] = 850
    assert not watch.check()
    reading["avail"] = 900  # 9 % free
    assert watch.check() and "free" in watch.detail
    reading["avail"] = 1400  # 14 %: under 1.5x the floor
    assert watch.check()
    reading["avail"] = 1600
    assert not watch.check()


def test_governor_follows_the_pause_file_and_says_an_unknown_idle_once(tmp_path):
    sink, stop = Recorder(), threading.Event()
    gate = PauseGate(sink, stop)
    quiet = MemoryWatch(None, 0, read=lambda: (1.0, 1.0, 1.0))
    gov = Governor(rc(only_when_idle=True), gate, pause_control.control_path(tmp_path),
                   idle=IdleProbe([("never", lambda: None)]), battery=lambda: None, memory=quiet)
    assert gov.step().run
    pause_control.pause(pause_control.control_path(tmp_path), "now")
    assert gov.step().reason == "user" and gate.holds("step")
    pause_control.resume(pause_control.control_path(tmp_path))
    assert gov.step().run and not gate.holds("round")
    assert [e["type"] for e in sink.events] == ["warning"]  # the note, once over three steps


def test_events_of_the_gate_are_protocol_events():
    import io

    out = io.StringIO()
    sink = EventSink(out)
    gate = PauseGate(sink, threading.Event(), poll=0.02)
    gate.set(Decision(False, "idle", "now", "the computer is in use"))
    threading.Timer(0.2, gate.set, args=(Decision(True),)).start()
    gate.wait(7)
    kinds = [decode(line)["type"] for line in out.getvalue().splitlines()]
    assert kinds == ["paused", "resumed"]


# --- idle time from a real X server -------------------------------------------------------------

@pytest.fixture
def xvfb():
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed")
    display = f":{200 + os.getpid() % 500}"
    # -noreset: a bare Xvfb resets (and zeroes its idle time) whenever its last client leaves; a
    # desktop always has clients (window manager, panel), so the probe opening per query is fine there
    server = subprocess.Popen(["Xvfb", display, "-noreset", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while x11_idle(display) is None:
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.skip("no X screen-saver extension (libXss) on this machine")
            time.sleep(0.2)
        yield display
    finally:
        server.terminate()
        server.wait(10)


def test_x11_idle_time_grows_and_input_resets_it(xvfb):
    time.sleep(1.2)
    before = x11_idle(xvfb)
    assert before >= 1.0
    subprocess.run(["xdotool", "mousemove", "10", "20"], env={**os.environ, "DISPLAY": xvfb}, check=True)
    assert x11_idle(xvfb) < before
    assert x11_idle(":9999") is None  # no such display: unknown, not an error


def test_the_pause_file_is_json_we_wrote(tmp_path):
    path = pause_control.pause(pause_control.control_path(tmp_path), "now")
    assert path.when == "now"
    data = json.loads(pause_control.control_path(tmp_path).read_text())
    assert set(data) == {"when", "until", "at"}
    assert oct(pause_control.control_path(tmp_path).stat().st_mode & 0o777) == "0o600"


def test_governor_applies_saved_resource_settings_without_a_restart(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("resources:\n  pause_on_battery: false\n")
    sink = Recorder()
    gate = PauseGate(sink, threading.Event())
    gov = Governor(load_config(cfg).resources, gate, pause_control.control_path(tmp_path), battery=lambda: True,
                   memory=MemoryWatch(None, 0, read=lambda: (1.0, 1.0, 1.0)), config_file=cfg)
    assert gov.step().run  # on battery, but allowed
    time.sleep(0.01)
    cfg.write_text("resources:\n  pause_on_battery: true\n")
    assert gov.step().reason == "battery"
    cfg.write_text("resources:\n  idle_minutes: -3\n")  # a bad save: kept the last good settings, said so
    assert gov.step().reason == "battery"
    assert any(e["type"] == "warning" and "not applied" in e["message"] for e in sink.events)
