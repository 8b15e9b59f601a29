"""`rl-swarm self-test`: does this installation work? One verdict per check, from the installed
executable itself (the bundle or a checkout), offline, in a throw-away data dir.

    sandbox        a correct and a wrong answer judged in the sandbox (the bundle is its interpreter)
    gui            the window's first paint, offscreen
    services       the local chain and login server come up and stop
    tiny round     a tiny node plays one round and stops cleanly (exit 0, node_stopped)

The clock starts when the self-test does: "first round at" is the time from launching the
installed app on an empty data dir to its first finished round, the figure the installers report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from desktop import events
from desktop.codezero.sandbox import run_with_tests
from desktop.utils.frozen import sandbox_python, self_command
from desktop.utils.proc_stop import terminate_then_kill


GUI_TIMEOUT = 120
SERVICES_TIMEOUT = 180
ROUND_TIMEOUT = 600


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str


def _child_env(data: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", QT_QPA_PLATFORM="offscreen")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Chromium refuses its sandbox as root
        env["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    return env


def _lines_until(proc: subprocess.Popen, wanted: Callable[[str], bool], timeout: float) -> list[str]:
    """stdout lines up to the first one ``wanted`` accepts (that one included); [] on timeout or EOF."""
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            seen.append(line.rstrip("\n"))
            if wanted(seen[-1]):
                done.set()
                return
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    return seen if seen and wanted(seen[-1]) else []


def _stop(proc: subprocess.Popen, grace: float = 30) -> int | None:
    terminate_then_kill([proc], grace)
    return proc.returncode


def check_sandbox() -> Check:
    began = time.monotonic()
    # HumanEval's references import hashlib: the sandbox's interpreter must carry what problems use
    right = run_with_tests("import hashlib\ndef double(x):\n    return 2 * x\n", "assert double(3) == 6\n")
    wrong = run_with_tests("def double(x):\n    return x\n", "assert double(3) == 6\n")
    ok = right.ok and not wrong.ok
    detail = (f"a right answer passed, a wrong one failed, with {os.path.basename(sandbox_python())}; "
              f"isolation: {', '.join(right.isolation) or 'none'}"
              if ok else f"right answer: {right.reason} {right.stderr[-200:]!r}; wrong answer: {wrong.reason}")
    return Check("sandbox", ok, time.monotonic() - began, detail)


def check_gui(data: Path) -> Check:
    began = time.monotonic()
    env = dict(_child_env(data), RL_SWARM_GUI_QUIT_AFTER_PAINT="web")  # then a page in the embedded browser
    proc = subprocess.Popen(self_command("gui", "--data-dir", str(data)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    seen = _lines_until(proc, lambda line: line.strip() in ("web ok", "web failed"), GUI_TIMEOUT)
    seconds = time.monotonic() - began
    code = _stop(proc, 10)
    painted = "painted" in (line.strip() for line in seen)
    if not seen or seen[-1].strip() != "web ok":
        what = "the embedded browser did not load a page" if painted else "no first paint"
        return Check("gui", False, seconds, f"{what} within {GUI_TIMEOUT} s (exit {code}): "
                                            f"{(proc.stderr.read() or '')[-300:]!r}")
    return Check("gui", True, seconds, "window painted and the embedded browser loaded the sign-in page, offscreen")


def check_services(data: Path) -> Check:
    began = time.monotonic()
    proc = subprocess.Popen(self_command("services", "--json", "--data-dir", str(data)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=_child_env(data))

    def ready(line: str) -> bool:
        try:
            return events.decode(line)["type"] == "services_ready"
        except events.EventError:
            return False

    seen = _lines_until(proc, ready, SERVICES_TIMEOUT)
    seconds = time.monotonic() - began
    code = _stop(proc)
    if not seen:
        return Check("services", False, seconds, f"no services_ready within {SERVICES_TIMEOUT} s (exit {code}): "
                                                 f"{(proc.stderr.read() or '')[-300:]!r}")
    info = events.decode(seen[-1])
    clean = code == 0
    return Check("services", clean, seconds, f"chain {info['rpc_url']}, login {info['login_url']}; "
                                             + ("stopped cleanly" if clean else f"stop gave exit {code}"))


def check_round(data: Path, started: float) -> Check:
    data.mkdir(parents=True, exist_ok=True)
    config = data / "selftest.yaml"
    config.write_text("chain:\n  enabled: false\n")  # a round of its own: no chain to wait for
    began = time.monotonic()
    proc = subprocess.run(self_command("node", "--pool", "tiny", "--rounds", "1", "--json-events",
                                       "--data-dir", str(data), "--config", str(config)),
                          capture_output=True, text=True, env=_child_env(data), timeout=ROUND_TIMEOUT)
    seconds = time.monotonic() - began
    evs = []
    for line in proc.stdout.splitlines():
        try:
            evs.append(events.decode(line))
        except events.EventError:
            pass
    finished = next((e for e in evs if e["type"] == "round_finished"), None)
    stopped = next((e for e in evs if e["type"] == "node_stopped"), None)
    ok = proc.returncode == 0 and finished is not None and stopped is not None and stopped["exit_code"] == 0
    if not ok:
        return Check("tiny round", False, seconds, f"exit {proc.returncode}; {len(evs)} events; "
                                                   f"{proc.stderr[-300:]!r}")
    at = finished["ts"] - (time.time() - (time.monotonic() - started))
    return Check("tiny round", True, seconds, f"round {finished['round']} reward {finished['reward_mean']:+.3f}; "
                                              f"first round at {at:.1f} s from launch; stopped cleanly")


def run_self_test(json_out: bool = False, keep: Path | None = None) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rlswarm-selftest-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        checks = []
        for name, run in (("sandbox", check_sandbox), ("gui", lambda: check_gui(root / "gui")),
                          ("services", lambda: check_services(root / "services")),
                          ("tiny round", lambda: check_round(root / "node", started))):
            if not json_out:
                print(f"… {name}", file=sys.stderr, flush=True)
            try:
                checks.append(run())
            except Exception as exc:  # a check that cannot even run has failed, with its reason
                checks.append(Check(name, False, 0.0, f"{type(exc).__name__}: {exc}"[:300]))
    passed = sum(c.ok for c in checks)
    if json_out:
        print(json.dumps({"ok": passed == len(checks), "seconds": round(time.monotonic() - started, 2),
                          "executable": sys.executable, "checks": [asdict(c) for c in checks]}))
    else:
        for c in checks:
            print(f"{'PASS' if c.ok else 'FAIL'}  {c.name:11} {c.seconds:6.1f} s  {c.detail}")
        print(f"self-test {'passed' if passed == len(checks) else 'FAILED'}: {passed}/{len(checks)} checks "
              f"in {time.monotonic() - started:.0f} s ({sys.executable})")
    return 0 if passed == len(checks) else 1
