"""Run untrusted, model-generated Python (and its tests) in a subprocess that cannot hurt the host.

Layers, strongest first, each probed once by :func:`capabilities`:

* ``ns`` (Linux): ``unshare`` gives fresh network, pid, ipc and mount namespaces. A boot stub runs
  as the namespace's init, builds a read-only root (system dirs and the interpreter only, fresh
  tmpfs /tmp) and chroots into it, so $HOME, the app data dir and swarm.pem are simply absent. As
  root the program then runs under a uid of its own, unique to the run (root ignores RLIMIT_NPROC
  and file modes, and a shared uid would share one process limit between sandboxes); as a normal
  user a user namespace is added and every capability is dropped before exec.
* ``plain`` (no usable namespaces, macOS): rlimits, own session, empty env and a temp dir; as root
  still a uid of its own.
* ``bare`` (Windows): empty env, temp dir and a wall-clock kill only.

Limits are applied by that boot stub in the child, not by ``preexec_fn``: preexec_fn runs Python
between fork and exec, which can deadlock in a multithreaded host (Qt, hivemind), and the stub can
also do the root-only work (mounts, chroot) after the namespaces exist. Output goes to files that
RLIMIT_FSIZE bounds, and at most ``output_bytes`` of each is read back. The stub also watches a
pipe whose only write end the host holds, so a killed host takes its sandboxes with it; temp dirs
left by killed hosts are removed on the next start. Nothing here raises: a sandbox that cannot
start is a result with reason ``"unavailable"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import psutil

from desktop.utils.frozen import sandbox_python

from .harness import TESTS_PROGRAM, job_line
from .sandbox_boot import BOOT


NOBODY = 65534  # the unprivileged user of systems that have one
_UID_BASE, _UID_SPAN = 0x40000000, 2**24  # per-sandbox uids: far above any real account
_DIR_PREFIX = "rlswarm-sandbox-"
MAIN_FILE = "sandboxed.py"  # the program as the sandbox names it (what ps and tracebacks show)
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
_FULL = ("rlimits", "session", "empty_env", "tmpdir", "no_network", "pid_namespace",
         "private_fs", "no_new_privs", "unprivileged_user")
# Read-only in the private root; the interpreter's own prefix is added when not under these.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/nix/store")


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 * 2**20
    file_size_bytes: int = 16 * 2**20
    open_files: int = 64
    processes: int = 32
    output_bytes: int = 64 * 1024
    tmp_bytes: int = 64 * 2**20  # size of the private /tmp (ns mode): caps the total written


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited 0 and was not killed
    returncode: int | None  # negative: killed by that signal; None: timed out or never started
    stdout: str  # first output_bytes
    stderr: str  # last output_bytes: the traceback is at the end
    reason: str  # ok | error | timeout | cpu | memory | file_size | killed | unavailable
    seconds: float
    isolation: tuple[str, ...]
    weaker: tuple[str, ...]


@dataclass(frozen=True)
class _Mode:
    kind: str  # "ns" | "plain" | "bare"
    drop: bool  # run the program as nobody (host is root)
    userns: bool = False  # ns mode for a non-root host

    @property
    def isolation(self) -> tuple[str, ...]:
        have = {"empty_env", "tmpdir"} | ({"rlimits", "session"} if self.kind != "bare" else set())
        if self.kind == "ns":
            have |= {"no_network", "pid_namespace", "private_fs"}
        if self.kind == "ns" or (self.kind == "plain" and sys.platform.startswith("linux")):
            have.add("no_new_privs")
        return tuple(i for i in _FULL if i in have or (i == "unprivileged_user" and self.drop))

    @property
    def weaker(self) -> tuple[str, ...]:
        return tuple(i for i in _FULL if i not in self.isolation)


def _ro_dirs() -> list[str]:
    """System dirs plus wherever this interpreter and its stdlib live (often under $HOME)."""
    dirs = [d for d in _SYSTEM_DIRS if os.path.lexists(d)]
    for extra in (os.path.realpath(sys.base_prefix), os.path.dirname(sandbox_python())):
        if not any(extra == d or extra.startswith(d + "/") for d in dirs):
            dirs.append(extra)
    return dirs


def _own_processes() -> int:
    try:
        me = os.getuid()
        return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == me)
    except Exception:  # psutil missing or /proc unreadable: a guess that still bounds a fork bomb
        return 256


def _rlimits(limits: SandboxLimits, mode: _Mode) -> list[tuple[str, int, int]]:
    cpu = max(1, int(limits.cpu_seconds))
    nproc = limits.processes
    if mode.kind == "plain" and not mode.drop and os.getuid() != 0:
        nproc += _own_processes()  # RLIMIT_NPROC counts every process of the user
    # hard CPU limit one second later: SIGXCPU (reported as "cpu") comes first, SIGKILL backs it up
    return [("RLIMIT_CPU", cpu, cpu + 1), ("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes),
            ("RLIMIT_FSIZE", limits.file_size_bytes, limits.file_size_bytes),
            ("RLIMIT_NOFILE", limits.open_files, limits.open_files), ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_NPROC", nproc, nproc)]


def _rmtree(path: str) -> None:
    def retry(func, p, _exc):  # the program may have chmod-ed its files to 000
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
    shutil.rmtree(path, onerror=retry)


def _wait_and_kill(proc: subprocess.Popen, wall: float) -> bool:
    """Wait up to ``wall`` seconds, then kill the whole process group. True when it timed out.

    With waitid(WNOWAIT) the leader stays a zombie until the group is killed, so its pgid cannot
    be reused by an unrelated process in between.
    """
    timed_out = True
    if hasattr(os, "waitid"):
        deadline, pause = time.monotonic() + wall, 0.002
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                timed_out = False
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    else:  # Windows, and macOS before Python 3.13
        with contextlib.suppress(subprocess.TimeoutExpired):
            timed_out = proc.wait(timeout=wall) is None
    if os.name == "nt":
        if timed_out:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True)
            proc.kill()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind die with the program
    proc.wait()
    return timed_out


def _read(f, n: int, tail: bool = False) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - n) if tail else 0)
    return f.read(n).decode("utf-8", "replace")


def _reason(rc: int, timed_out: bool, err_tail: str, limits: SandboxLimits, seconds: float) -> str:
    if timed_out or rc == 0:
        return "timeout" if timed_out else "ok"
    last = ([ln for ln in err_tail.splitlines() if ln.strip()] or [""])[-1]  # the exception line
    if last.startswith("MemoryError") or "[Errno 12]" in last or any(
            m in err_tail for m in ("Cannot allocate memory", "failed to map segment")):
        return "memory"
    if "[Errno 27]" in last or "File too large" in last or "[Errno 28]" in last:  # EFBIG, ENOSPC
        return "file_size"
    if rc > 0:
        return "error"
    sig = -rc
    if sig == getattr(signal, "SIGXCPU", 0) or (sig == getattr(signal, "SIGKILL", 0) and seconds >= limits.cpu_seconds):
        return "cpu"  # the soft RLIMIT_CPU sends SIGXCPU, the hard one SIGKILL
    return "file_size" if sig == getattr(signal, "SIGXFSZ", 0) else "killed"


def _result(mode: _Mode, start: float, reason: str, stderr: str = "", stdout: str = "",
            returncode: int | None = None) -> SandboxResult:
    return SandboxResult(ok=reason == "ok", returncode=returncode, stdout=stdout, stderr=stderr, reason=reason,
                         seconds=time.monotonic() - start, isolation=mode.isolation, weaker=mode.weaker)


def _execute(code: str, limits: SandboxLimits, stdin: str, mode: _Mode) -> SandboxResult:
    start = time.monotonic()
    outer = None
    try:
        # the host pid in the name: whoever checks for leftovers can tell its own from others'
        outer = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")
        return _execute_in(outer, code, limits, stdin, mode, start)
    except Exception as e:  # never let the sandbox take the host down
        return _result(mode, start, "unavailable", f"sandbox failed to run: {type(e).__name__}: {e}")
    finally:
        if outer:
            _rmtree(outer)


def sandbox_uid() -> int:
    """A uid of this sandbox's own (as root): RLIMIT_NPROC counts processes per uid, so one
    candidate's fork bomb cannot use up the process limit of candidates judged beside it."""
    return _UID_BASE + secrets.randbelow(_UID_SPAN)


def _command(outer: str, argv: list[str], limits: SandboxLimits, mode: _Mode, alive: int) -> list[str]:
    """The boot stub's command line, its config written for it (program source, limits, paths)."""
    src, work = os.path.join(outer, "src.py"), os.path.join(outer, "work")
    uid = sandbox_uid() if mode.drop else None
    if uid is not None:
        os.chown(work, uid, uid)
    root = os.path.join(outer, "root") if mode.kind == "ns" else None
    if root:
        os.mkdir(root, 0o755)
    cfg = {"src": src, "status": os.path.join(outer, "status"), "argv": argv, "work": work, "root": root,
           "ro": _ro_dirs(), "tmp_bytes": limits.tmp_bytes, "uid": uid, "gid": uid, "alive": alive,
           "drop_caps": mode.userns, "rlimits": _rlimits(limits, mode)}
    cmd = [argv[0], "-I", "-S", "-B", "-c", BOOT, json.dumps(cfg)]
    if mode.kind != "ns":
        return cmd
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    userns = ["--user", "--map-root-user"] if mode.userns else []
    return [unshare, "--net", "--pid", "--ipc", "--mount-proc", "--fork", "--kill-child", *userns, "--", *cmd]


def _feed(fd: int, data: bytes) -> None:
    """Write a child's whole stdin through a pipe (never a file another process could open)."""
    try:
        with open(fd, "wb", closefd=True) as pipe:
            pipe.write(data)
    except OSError:  # the program exited without reading it all
        pass


def _execute_in(outer: str, code: str, limits: SandboxLimits, stdin: str, mode: _Mode,
                start: float) -> SandboxResult:
    os.chmod(outer, 0o711)  # its files stay root-only, yet the sandbox user can reach the work dir inside
    argv = [sandbox_python(), "-I", "-S", "-B", "-u", "-X", "utf8", MAIN_FILE]
    work = os.path.join(outer, "work")
    os.mkdir(work, 0o700)
    with open(os.path.join(outer, "src.py"), "wb") as f:
        f.write(code.encode("utf-8", "surrogatepass"))
    stdin_r, stdin_w = os.pipe()
    alive_r, alive_w = os.pipe()  # the host holds the write end: EOF there means the host is gone
    try:
        with open(os.path.join(outer, "stdout"), "w+b") as fout, open(os.path.join(outer, "stderr"), "w+b") as ferr:
            if mode.kind == "bare":
                shutil.copy(os.path.join(outer, "src.py"), os.path.join(work, MAIN_FILE))
                env = {k: v for k, v in os.environ.items() if k.upper() == "SYSTEMROOT"}  # Windows needs it
                proc = subprocess.Popen(argv, stdin=stdin_r, stdout=fout, stderr=ferr, cwd=work, env=env,
                                        creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
            else:
                proc = subprocess.Popen(_command(outer, argv, limits, mode, alive_r), stdin=stdin_r, stdout=fout,
                                        stderr=ferr, cwd=outer, env=dict(_ENV), start_new_session=True,
                                        close_fds=True, pass_fds=(alive_r,))
            os.close(stdin_r)
            stdin_r = -1
            feeder = threading.Thread(target=_feed, args=(stdin_w, stdin.encode("utf-8", "surrogatepass")),
                                      daemon=True)
            stdin_w = -1  # _feed owns it now
            feeder.start()
            timed_out = _wait_and_kill(proc, limits.wall_seconds)
            feeder.join(1)
            seconds = time.monotonic() - start
            out, err = _read(fout, limits.output_bytes), _read(ferr, limits.output_bytes, tail=True)
            err_tail = _read(ferr, 4096, tail=True)
            filled = max(fout.seek(0, os.SEEK_END), ferr.seek(0, os.SEEK_END)) >= limits.file_size_bytes
    finally:
        for fd in (stdin_r, stdin_w, alive_r, alive_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
    try:
        with open(os.path.join(outer, "status"), encoding="utf-8") as f:
            status = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        status = {}
    rc = proc.returncode
    if "setup_error" in status:
        return _result(mode, start, "unavailable", f"sandbox setup failed: {status['setup_error']}\n{err}", out)
    if mode.kind != "bare" and not timed_out:  # the boot stub reports how the program ended
        if "exit" not in status and "signal" not in status:  # unshare failed, or the stub died
            return _result(mode, start, "unavailable", f"sandbox did not start (rc={rc})\n{err}", out)
        rc = status["exit"] if "exit" in status else -status["signal"]
    reason = _reason(rc, timed_out, err_tail, limits, seconds)
    if reason in ("error", "killed") and filled:  # an output file hit RLIMIT_FSIZE: the write failed
        reason = "file_size"
    return dataclasses.replace(_result(mode, start, reason, err, out, None if timed_out else rc), seconds=seconds)


def _candidates() -> list[_Mode]:
    if os.name == "nt":
        return [_Mode("bare", drop=False)]
    root = os.geteuid() == 0
    ns = sys.platform.startswith("linux") and bool(shutil.which("unshare") or os.path.exists("/usr/bin/unshare"))
    return ([_Mode("ns", drop=root, userns=not root)] if ns else []) + \
        ([_Mode("plain", drop=True)] if root else []) + [_Mode("plain", drop=False)]


def _works(mode: _Mode) -> bool:
    """Run a probe in ``mode``; it must start and run as the user the mode promises."""
    r = _execute("import os\nprint(os.getuid())", SandboxLimits(wall_seconds=20), "", mode)
    if mode.kind == "bare":
        return r.ok
    uid = r.stdout.strip()
    if mode.drop:
        return r.ok and uid.isdigit() and _UID_BASE <= int(uid) < _UID_BASE + _UID_SPAN
    return r.ok and uid == str(0 if mode.userns else os.getuid())


def remove_stale_dirs(tmp: str | None = None) -> list[str]:
    """Delete sandbox temp dirs left by host processes that died (SIGKILL leaves no time to clean)."""

    removed = []
    tmp = tmp or tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(tmp):
            if not name.startswith(_DIR_PREFIX):
                continue
            pid = name[len(_DIR_PREFIX):].split("-", 1)[0]
            path = os.path.join(tmp, name)
            try:
                created = os.stat(path).st_mtime
                # the same pid may belong to a newer process now: only one started before the dir counts
                if pid.isdigit() and psutil.pid_exists(int(pid)) and psutil.Process(int(pid)).create_time() <= created + 1:
                    continue
            except (OSError, psutil.Error):
                pass
            _rmtree(path)
            removed.append(path)
    return removed


_mode: _Mode | None = None
_mode_lock = threading.Lock()


def _current_mode() -> _Mode:
    global _mode
    with _mode_lock:
        if _mode is None:
            remove_stale_dirs()
            candidates = _candidates()
            _mode = next((m for m in candidates if _works(m)), candidates[-1])
        return _mode


def capabilities() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(isolation in force, isolation this OS could not give), probed once per process."""
    mode = _current_mode()
    return mode.isolation, mode.weaker


def run_python(code: str, *, limits: SandboxLimits = SandboxLimits(), stdin: str = "") -> SandboxResult:
    """Run ``code`` as a script in the sandbox; ``stdin`` is its whole standard input."""
    try:
        mode = _current_mode()
    except Exception as e:  # probing must not crash the host either
        return _result(_Mode("bare", drop=False), time.monotonic(), "unavailable", f"no sandbox: {e}")
    return _execute(code, limits, stdin, mode)


def run_with_tests(program: str, tests: str, *, limits: SandboxLimits = SandboxLimits(),
                   context: str = "") -> SandboxResult:
    """Judge ``program`` by ``tests``; ``ok`` means every test passed.

    The candidate and the tests run in two processes (see :mod:`desktop.codezero.harness`): the
    tests call the candidate's functions across a pipe, and only the tests process holds the
    one-time token it prints after the last test. Exiting early, printing, patching builtins or
    reading the harness's memory cannot produce that token. Tracebacks name ``solution.py`` or
    ``tests.py``; the candidate's module is not ``__main__``, so its demo block does not run.
    ``context`` (code the tests also hold, e.g. a prompt's helpers) and the tests' imports run in
    the candidate's module after the program, as they would have in one shared module.
    """
    token = f"rlswarm-tests-passed-{secrets.token_hex(16)}"
    result = run_python(TESTS_PROGRAM, limits=limits, stdin=job_line(program, tests, token, context))
    passed = result.ok and result.stdout.strip() == token
    if passed:
        return dataclasses.replace(result, stdout="", stderr=result.stderr.rstrip("\n"))
    stdout = result.stdout.replace(token, "")
    if result.ok:  # exited 0 without the token: the tests did not all run
        return dataclasses.replace(result, ok=False, reason="error", stdout=stdout, stderr=result.stderr +
                                   "\n[sandbox] the tests did not finish; counted as a failure")
    return dataclasses.replace(result, stdout=stdout)
