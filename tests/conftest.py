"""Shared test set-up: quiet, offline, single-threaded, and no child process left behind."""

import os

# Before anything imports Qt, torch or the hub client.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import psutil
import pytest

import desktop.gui  # noqa: F401  (works around a PySide6 refcount bug before any Qt test runs)

pytest_plugins = ["tests.chain_fixtures"]  # one real anvil per test session, started on demand


def _kill_children(keep: frozenset = frozenset()) -> list[str]:
    me = psutil.Process()
    # per-process helpers (Qt WebEngine, torch's shm manager) live as long as the test process: not leaks
    leftovers = [c for c in me.children(recursive=True) if c.pid not in keep and not _is_process_helper(c)]
    names = []
    for child in leftovers:
        try:
            names.append(f"{child.pid}:{child.name()}")
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=5)
    return names


_PROCESS_HELPERS = ("QtWebEngineProcess", "torch_shm_manager")  # killing them breaks later tests


def _is_process_helper(proc: psutil.Process) -> bool:
    try:
        names = (proc.name(), " ".join(proc.cmdline()[:1]))
    except psutil.Error:
        return False
    return any(helper in name for helper in _PROCESS_HELPERS for name in names)


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    """Each test must clean up after itself; whatever it leaves is killed (and reported).

    Children that existed before the test (started by module or session fixtures) are kept."""
    before = frozenset(c.pid for c in psutil.Process().children(recursive=True))
    yield
    leftovers = _kill_children(before)
    if leftovers:
        print(f"\nkilled leftover child processes: {leftovers}")


@pytest.fixture(autouse=True, scope="session")
def _torch_single_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(1)
    yield


def pytest_sessionfinish(session, exitstatus):
    # torch_shm_manager must outlive the interpreter's own shutdown: killing it here made torch's
    # exit-time cleanup abort the whole run (exit 134) after every test had passed
    _kill_children()
