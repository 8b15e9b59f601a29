"""A signal to stop (a logout's SIGTERM, Ctrl-C, a closed terminal) ends the real app and every
process it started, also when a system tray would otherwise keep it running after its window closed.

The app runs as a real subprocess (`python -m desktop.cli gui`) with its real local services and
node. Offscreen there is no tray, so one test makes the app decide there is one (the way it decides:
desktop.gui.shell.tray.tray_available); another uses a real tray (Xvfb + trayer) where they are installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]

# The app as main() runs it, except that it believes a system tray is there.
WITH_TRAY = ("import sys, desktop.gui.shell.tray as tray; tray.tray_available = lambda: True; "
             "from desktop.cli import main; sys.exit(main(sys.argv[1:]))")


def _data_dir(tmp_path: Path, signed_in: bool) -> Path:
    """Past the wizard, on the local profile; signed in, the node starts with the services."""
    data = tmp_path / "data"
    (data / "config").mkdir(parents=True)
    (data / "config" / "config.yaml").write_text("profile: local\ntraining:\n  max_new_tokens: 16\n")
    (data / "config" / "gui.ini").write_text("[first_run]\ndone=true\n")  # first_run.KEY_DONE
    if signed_in:
        (data / "login").mkdir()
        (data / "login" / "userData.json").write_text(
            '{"org": {"orgId": "org", "email": "a@b.c", "address": "0x' + "1" * 40 + '"}}')
    return data


def _env(**extra: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.update(extra)
    return env


def _wait_for_children(app: subprocess.Popen, wanted: tuple[str, ...], timeout: float) -> list[psutil.Process]:
    """The app's descendants once each program in ``wanted`` runs among them: "anvil" (the
    services' chain is up), "p2pd" (the node has started its DHT)."""
    parent, deadline = psutil.Process(app.pid), time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert app.poll() is None, f"the app exited early ({app.returncode})"
        kids, found = parent.children(recursive=True), set()
        for kid in kids:
            try:
                found.update(w for w in wanted if w in kid.name())
            except psutil.Error:
                pass
        if found == set(wanted):
            return kids
        time.sleep(0.5)
    pytest.fail(f"the app did not start {wanted} within {timeout} s")


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid}:{' '.join(proc.cmdline()[:4])}")
        except psutil.NoSuchProcess:
            pass
    return left


def _stops_on(sig: int, argv: list[str], env: dict, wanted: tuple[str, ...], tmp_path: Path,
              start_timeout: float = 240) -> None:
    out = (tmp_path / "app.out").open("w")
    app = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        kids = _wait_for_children(app, wanted, start_timeout)
        kids = psutil.Process(app.pid).children(recursive=True) or kids
        assert len(kids) >= len(wanted) + 1  # e.g. services + anvil
        began = time.monotonic()
        app.send_signal(sig)
        try:
            code = app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the app still runs 60 s after {signal.Signals(sig).name}: "
                        + (tmp_path / "app.out").read_text()[-2000:])
        psutil.wait_procs(kids, timeout=10)
        assert _alive(kids) == [], "children outlived the app"
        assert code == 0, (tmp_path / "app.out").read_text()[-2000:]
        assert time.monotonic() - began < 45
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(10)
        for proc in psutil.process_iter():  # anything left of this app, found by its data dir
            try:
                if str(tmp_path) in " ".join(proc.cmdline()):
                    proc.kill()
            except psutil.Error:
                pass
        out.close()


@pytest.mark.slow
def test_sigterm_with_a_tray_stops_node_services_and_app(tmp_path):
    data = _data_dir(tmp_path, signed_in=True)
    _stops_on(signal.SIGTERM, [sys.executable, "-c", WITH_TRAY, "gui", "--data-dir", str(data)], _env(),
              ("anvil", "p2pd"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_with_a_tray_stops_services_and_app(tmp_path, sig):
    data = _data_dir(tmp_path, signed_in=False)  # nobody signed in: the services, no node
    _stops_on(sig, [sys.executable, "-c", WITH_TRAY, "gui", "--data-dir", str(data)], _env(),
              ("anvil",), tmp_path)


@pytest.fixture
def real_tray(tmp_path):
    """An X server with a system tray (Xvfb + trayer), where both are installed."""
    if not (shutil.which("Xvfb") and shutil.which("trayer")):
        pytest.skip("Xvfb and trayer are not installed")
    display = f":{100 + os.getpid() % 400}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tray = None
    try:
        time.sleep(1.5)
        tray = subprocess.Popen(["trayer", "--edge", "top", "--align", "right"], env={**os.environ,
                                "DISPLAY": display}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        env = _env(QT_QPA_PLATFORM="xcb", DISPLAY=display)
        probe = subprocess.run([sys.executable, "-c", "from PySide6.QtWidgets import QApplication as A, "
                                "QSystemTrayIcon as T; a = A([]); print(T.isSystemTrayAvailable())"],
                               env=env, capture_output=True, text=True, timeout=60)
        if probe.stdout.strip() != "True":
            pytest.skip(f"no system tray under Xvfb: {probe.stderr[-300:]}")
        yield env
    finally:
        for proc in (tray, xvfb):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


@pytest.mark.slow
def test_sigterm_with_a_real_tray_stops_services_and_app(tmp_path, real_tray):
    data = _data_dir(tmp_path, signed_in=False)
    _stops_on(signal.SIGTERM, [sys.executable, "-m", "desktop.cli", "gui", "--data-dir", str(data)], real_tray,
              ("anvil",), tmp_path)
