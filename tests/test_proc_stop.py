"""terminate_then_kill: the one SIGTERM -> grace -> SIGKILL routine, on real processes."""

import pytest
import signal
import subprocess
import sys
import time

import psutil

from desktop.utils.proc_stop import terminate_then_kill

POLITE = "import time\nwhile True: time.sleep(0.1)"  # default SIGTERM handling: dies at once
STUBBORN = ("import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print(child.pid, flush=True)\ntime.sleep(600)")


def test_a_polite_child_stops_on_sigterm_without_waiting_out_the_grace():
    proc = subprocess.Popen([sys.executable, "-c", POLITE], start_new_session=True)
    time.sleep(0.3)
    started = time.monotonic()
    terminate_then_kill([proc], grace=30)
    assert proc.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 15  # not the 30 s grace


@pytest.mark.slow
def test_a_child_ignoring_sigterm_is_killed_with_its_whole_group():
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], start_new_session=True, stdout=subprocess.PIPE,
                            text=True)
    grandchild = int(proc.stdout.readline())
    terminate_then_kill([proc], grace=1)
    assert proc.returncode == -signal.SIGKILL
    assert _gone(grandchild, within=10)  # killed with the group, not orphaned


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True  # dead, waiting for whoever adopted it to reap it
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_already_gone_processes_are_fine():
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(30)
    terminate_then_kill([proc], grace=1)  # nothing to signal: no error
    assert proc.returncode == 0
