"""The sandbox against hostile programs: real subprocesses, no mocks.

Every test also checks (autouse fixture) that the host is unaffected: no sandbox process survives,
no sandbox temp dir is left behind, and the host can still start processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import psutil
import pytest

from desktop.codezero.sandbox import (NOBODY, SandboxLimits, SandboxResult,
                                      capabilities, run_python, run_with_tests)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX isolation tests")
ISOLATION, WEAKER = capabilities()
IS_ROOT = os.geteuid() == 0
SAME_USER_SEES_FILES = "unprivileged_user" in WEAKER and "private_fs" in WEAKER


def _sandbox_dirs() -> set[str]:
    """This process's sandbox dirs (other processes on the machine may be judging code too)."""
    prefix = f"rlswarm-sandbox-{os.getpid()}-"
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith(prefix)}


def _strays() -> list:
    """Live processes this test process started, directly or not (sandbox or escaped child).

    Only our descendants are counted: other sessions may share this machine. Inside a pid
    namespace even a child that called setsid stays a descendant of the namespace's init.
    """
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                found.append((p.pid, " ".join(p.cmdline())[:80]))
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(autouse=True)
def host_unaffected():
    before_dirs = _sandbox_dirs()
    before = set(_strays())  # children of session fixtures (a test chain, ...) are not strays
    yield
    deadline = time.monotonic() + 3  # plain mode kills asynchronously; namespaces die at once
    while set(_strays()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(_strays()) - before == set()
    assert _sandbox_dirs() <= before_dirs
    assert subprocess.run(["true"]).returncode == 0


def test_capabilities_are_consistent():
    assert {"rlimits", "session", "empty_env", "tmpdir"} <= set(ISOLATION)
    assert not set(ISOLATION) & set(WEAKER)
    if IS_ROOT and sys.platform.startswith("linux") and "pid_namespace" in ISOLATION:
        assert "unprivileged_user" in ISOLATION  # root must never run model code as root


def test_correct_program_passes_its_tests():
    r = run_with_tests("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n")
    assert isinstance(r, SandboxResult)
    assert r.ok, r
    assert r.reason == "ok", r
    assert r.returncode == 0, r
    assert r.isolation == ISOLATION
    assert r.weaker == WEAKER


def test_wrong_program_fails_with_assertion_error():
    r = run_with_tests("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n")
    assert not r.ok
    assert r.reason == "error"
    assert r.returncode == 1
    assert "AssertionError" in r.stderr
    assert "tests.py" in r.stderr


@pytest.mark.parametrize("escape", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n",
                                    "def add(a, b):\n    return a + b\nraise SystemExit(0)\n"])
def test_exiting_before_the_tests_is_not_a_pass(escape):
    r = run_with_tests(escape, "assert add(2, 3) == 5\n")
    assert not r.ok, r
    assert r.reason == "error", r


def test_pass_marker_is_not_shown():
    r = run_with_tests("import sys\ndef f():\n    return 1\nprint('note', file=sys.stderr)\n", "assert f() == 1\n")
    assert r.ok
    assert r.stderr == "note"
    assert "rlswarm-tests-passed" not in r.stdout + r.stderr


def test_concurrent_runs_do_not_interfere():
    from concurrent.futures import ThreadPoolExecutor

    code = "import os, sys\nopen('f', 'w').write(sys.stdin.read())\nprint(open('f').read(), os.listdir('.'))"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: run_python(code, stdin=str(i)), range(4)))
    for i, r in enumerate(results):
        assert r.ok, r
        assert r.stdout.split()[0] == str(i), r


def test_syntax_error_and_main_guard():
    bad = run_with_tests("def f(:\n", "assert f() == 1\n")
    assert not bad.ok
    assert "SyntaxError" in bad.stderr
    assert "solution.py" in bad.stderr
    # a demo block that reads stdin must not run (or block) while the solution is judged
    demo = "def f():\n    return 1\nif __name__ == '__main__':\n    print(f(int(input())))\n"
    assert run_with_tests(demo, "assert f() == 1\n").ok


def test_stdin_and_stdout():
    r = run_python("import sys\nprint(sys.stdin.read().upper())", stdin="hello")
    assert r.ok
    assert r.stdout.strip() == "HELLO"


@pytest.mark.slow
def test_infinite_loop_hits_cpu_limit():
    t0 = time.monotonic()
    r = run_python("while True:\n    pass\n", limits=SandboxLimits(cpu_seconds=1, wall_seconds=10))
    assert not r.ok, r
    assert r.reason == "cpu", r
    assert time.monotonic() - t0 < 5


@pytest.mark.slow
def test_sleeping_program_and_escaped_children_are_killed_at_wall_clock():
    code = "import os, time\nos.fork()\ntime.sleep(100)\n"
    if "pid_namespace" in ISOLATION:  # a child that leaves the session must not outlive it either
        code = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(100)\n"
    t0 = time.monotonic()
    r = run_python(code, limits=SandboxLimits(wall_seconds=1))
    assert not r.ok
    assert r.reason == "timeout"
    assert r.returncode is None
    assert time.monotonic() - t0 < 4


def test_background_children_die_with_the_program():
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(100)\nprint('bye')\n"
    if "pid_namespace" not in ISOLATION:  # without one, only the process group is swept
        code = code.replace("    os.setsid()\n", "")
    r = run_python(code)
    assert r.ok
    assert r.stdout.strip() == "bye"
    # the fixture checks the sleeping child is gone


@pytest.mark.slow
def test_fork_bomb_is_contained():
    code = ("import os\n"
            "while True:\n"
            "    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n")
    r = run_python(code, limits=SandboxLimits(processes=16, wall_seconds=3))
    assert not r.ok, r
    assert r.reason in ("timeout", "cpu"), r
    # the fixture then checks nothing survived and the host can still fork


def test_huge_allocation_is_a_memory_error():
    r = run_python("x = bytearray(4 * 2**30)\n")
    assert not r.ok, r
    assert r.reason == "memory", r
    assert "MemoryError" in r.stderr


@pytest.mark.slow
def test_huge_file_write_is_bounded():
    name = f"big-{uuid.uuid4().hex}.bin"
    code = f"with open({name!r}, 'wb') as f:\n    f.write(b'x' * (100 * 2**20))\n"
    r = run_python(code)
    assert not r.ok, r
    assert r.reason == "file_size", r
    assert not any(name in files for _, _, files in os.walk(tempfile.gettempdir()))


def test_writes_outside_the_sandbox_fail(tmp_path):
    if SAME_USER_SEES_FILES:
        pytest.skip("same user and no private filesystem: the sandbox can write the user's files")
    target_dir = tmp_path / "host"
    target_dir.mkdir(mode=0o755)
    targets = [str(target_dir / "pwned.txt"), f"/root/rlswarm-pwned-{uuid.uuid4().hex}.txt"]
    code = ("import json\nout = {}\n"
            f"for p in {targets!r}:\n"
            "    try:\n        open(p, 'w').write('x')\n        out[p] = 'written'\n"
            "    except OSError as e:\n        out[p] = type(e).__name__\n"
            "print(json.dumps(out))\n")
    try:
        r = run_python(code)
        assert r.ok, r
        outcome = json.loads(r.stdout)
        assert all(v != "written" for v in outcome.values()), outcome
        assert not any(os.path.exists(t) for t in targets)
    finally:
        for t in targets:
            if os.path.exists(t):
                os.unlink(t)


def test_network_is_unreachable():
    if "no_network" in WEAKER:
        pytest.skip("this OS gives the sandbox no network isolation")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = ("import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\n"
            "except OSError as e:\n    print('blocked', e)\n")
    try:
        r = run_python(code)
        assert r.ok, r
        assert r.stdout.startswith("blocked"), r
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the host's listener
    finally:
        server.close()


def test_identity_file_is_unreadable(tmp_path):
    if SAME_USER_SEES_FILES:
        pytest.skip("same user and no private filesystem: the sandbox can read the user's files")
    secret = f"SWARM-PEM-{uuid.uuid4().hex}"
    keydir = tmp_path / "identity"
    keydir.mkdir(mode=0o700)
    key = keydir / "swarm.pem"
    key.write_text(secret)
    key.chmod(0o400)
    code = ("import glob\n"
            f"for p in [{str(key)!r}] + glob.glob('/root/**/swarm.pem', recursive=True):\n"
            "    try:\n        print(open(p).read())\n"
            "    except OSError as e:\n        print('denied', type(e).__name__)\n")
    r = run_python(code)
    assert r.ok
    assert "denied" in r.stdout
    assert secret not in r.stdout
    assert secret not in r.stderr


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setenv("PYTHONPATH", "/nonexistent/injected")
    r = run_python("import json, os, sys\nprint(json.dumps([dict(os.environ), sys.path]))")
    env, path = json.loads(r.stdout)
    assert set(env) <= {"PATH", "LANG", "LC_CTYPE"}, env
    assert "HF_TOKEN" not in env
    assert "HOME" not in env
    assert "hf_secret_value_123" not in r.stdout
    assert not any("injected" in p or "site-packages" in p for p in path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_no_privileges_left():
    code = ("import os\n"
            "s = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
            "print(os.getuid(), s['CapEff'].strip(), s['NoNewPrivs'].strip())\n")
    r = run_python(code)
    assert r.ok, r
    uid, cap_eff, nnp = r.stdout.split()
    if not (IS_ROOT and "unprivileged_user" in WEAKER):
        assert int(cap_eff, 16) == 0
    if "no_new_privs" in ISOLATION:
        assert nnp == "1"
    if IS_ROOT and "unprivileged_user" in ISOLATION:
        # a uid of its own, not root, not nobody (whose process limit every sandbox would share)
        assert int(uid) not in (0, NOBODY, os.getuid())
        again = run_python(code).stdout.split()[0]
        assert again != uid  # each run its own


def test_huge_output_is_truncated():
    limits = SandboxLimits(output_bytes=4096)
    code = "import sys\nprint('a' * 2_000_000)\nsys.stderr.write('b' * 2_000_000 + 'END')\n"
    r = run_python(code, limits=limits)
    assert r.ok, r.reason
    assert r.stdout == "a" * 4096
    assert len(r.stderr) == 4096
    assert r.stderr.endswith("END")


def test_impossible_limits_return_a_result_not_an_exception():
    r = run_python("print(1)", limits=SandboxLimits(memory_bytes=2**20))
    assert isinstance(r, SandboxResult)
    assert not r.ok
    assert r.reason in ("memory", "error", "killed", "unavailable")
