"""Supervise a child process with QProcess (the node's and the services' own parts: children.py).

One QObject wraps one QProcess per run: it turns stdout into protocol events, keeps every other
line for the log view, restarts a crashed child with exponential backoff and describes how each
run ended as an `Outcome`. It never blocks the event loop (except `shutdown()`, meant for quitting)
and imports only Qt and the light `desktop.events`, never torch/transformers/hivemind.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from functools import partial
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from desktop import events
from desktop.events.text import WARNING, record_level
from desktop.gui.processes.outcome import POSIX, Outcome, ProcState, RestartPolicy  # noqa: F401  (re-exported)

MAX_LINE = 1 << 20  # a longer line is a bug or garbage: drop it rather than grow without bound
TAIL_LINES = 50
LOG_ROTATE_BYTES = 5 << 20
SWEEP_GRACE_MS = 2000  # leftover grandchildren get SIGTERM, then SIGKILL after this


class ProcessSupervisor(QObject):
    state_changed = Signal(object)  # ProcState
    event = Signal(object)  # dict: a valid protocol event from stdout
    json_line = Signal(object)  # dict: any other JSON object on stdout
    log_line = Signal(str, str)  # stream ("stdout"/"stderr"), text
    finished = Signal(object)  # Outcome
    restarting = Signal(int, float)  # attempt, delay in seconds
    gave_up = Signal(object)  # Outcome of the last crash

    # Subclasses whose child announces readiness (node_started, the services' info line) stay
    # STARTING until then; a plain process is RUNNING as soon as it has started.
    running_on_spawn = True

    def __init__(self, name: str, argv_factory: Callable[[], list[str]], *, parent: QObject | None = None,
                 restart: RestartPolicy | None = None, env: dict | None = None,
                 env_factory: Callable[[], dict] | None = None,
                 log_path: Path | None = None, stop_timeout: float = 30.0, stop_by_stdin: bool = False) -> None:
        super().__init__(parent)
        self.name = name
        # a child that signals cannot reach (the node inside WSL) is asked on its stdin instead:
        # "stop" / "finish-round" lines, which `rl-swarm node --control-stdin` reads
        self.stop_by_stdin = stop_by_stdin
        self._argv_factory = argv_factory
        self.policy = restart or RestartPolicy()
        self._env = dict(env or {})
        self._env_factory = env_factory  # read at every start and restart (e.g. a token saved since)
        self._log_path = Path(log_path) if log_path else None
        self.stop_timeout = stop_timeout
        self._state = ProcState.STOPPED
        self._proc: QProcess | None = None
        self._pgid: int | None = None
        self._restarts = 0
        self._requested = False
        self._terminated = False  # SIGTERM already sent for this run
        self._restart_after_stop = False
        self._started_at = 0.0
        self._bufs: dict[str, bytearray] = {}
        self._discarding: dict[str, bool] = {}
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._last_error: str | None = None
        self._log_file = None
        self._restart_timer = QTimer(self, singleShot=True)
        self._restart_timer.timeout.connect(self._spawn)
        self._kill_timer = QTimer(self, singleShot=True)
        self._kill_timer.timeout.connect(self._kill)

    # ---- public API ------------------------------------------------------------------------------
    @property
    def state(self) -> ProcState:
        return self._state

    @property
    def pid(self) -> int | None:
        return (self._proc.processId() or None) if self._proc is not None else None

    def set_env(self, name: str, value: str) -> None:
        """An environment variable for the next start (e.g. a token the child reads)."""
        self._env[name] = value

    def start(self) -> bool:
        """Start a run (a user action: the crash counter starts again). False if one is running."""
        if self._proc is not None:
            return False
        self._restart_timer.stop()
        self._restarts = 0
        self._spawn()
        return True

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM), kill it after `stop_timeout`; never restart it."""
        self._restart_timer.stop()
        if self._proc is None:
            if self._state is ProcState.CRASHED:  # a restart was pending: cancelled
                self._set_state(ProcState.STOPPED)
            return
        self._requested = True
        if self._terminated:
            return
        self._terminated = True
        self._set_state(ProcState.STOPPING)
        if self.stop_by_stdin:
            self._proc.write(b"stop\n")
            self._kill_timer.start(int(self.stop_timeout * 1000))
        elif POSIX:
            self._proc.terminate()
            self._kill_timer.start(int(self.stop_timeout * 1000))
        else:
            # terminate() only posts WM_CLOSE, which a console child never sees: kill at once
            # (the node keeps its last checkpoint, so a kill loses at most the current round).
            self._kill()

    def finish_round_then_stop(self) -> None:
        """Let the node finish its current round, then exit (SIGUSR1); stop() where impossible."""
        if self._requested:
            return  # already stopping; a second click must not turn into a hard stop
        if self.stop_by_stdin and self._proc is not None:
            self._requested = True
            self._set_state(ProcState.STOPPING)
            self._proc.write(b"finish-round\n")  # read whenever the node gets to it: no race
            return
        if not POSIX or self._proc is None or self._state is not ProcState.RUNNING:
            self.stop()  # before the child has installed its handler SIGUSR1 would kill it outright
            return
        self._requested = True
        self._set_state(ProcState.STOPPING)
        try:
            os.kill(self._proc.processId(), signal.SIGUSR1)
        except (ProcessLookupError, ValueError):
            pass  # already exiting: finished() follows

    def restart(self) -> None:
        """Stop the running child (if any), then start a fresh run."""
        if self._proc is None:
            self.start()
            return
        self._restart_after_stop = True
        self.stop()

    def shutdown(self, timeout: float | None = None) -> None:
        """Blocking stop for app exit: SIGTERM, wait, then kill the whole process group."""
        self._restart_timer.stop()
        proc = self._proc
        if proc is None:
            return
        self._requested = True
        self._terminated = True
        self._set_state(ProcState.STOPPING)
        pgid = self._pgid
        if self.stop_by_stdin or POSIX:
            if self.stop_by_stdin:
                proc.write(b"stop\n")
            else:
                proc.terminate()
            proc.waitForFinished(int((self.stop_timeout if timeout is None else timeout) * 1000))
        if self._proc is proc:
            self._kill()
            proc.waitForFinished(5000)
        if pgid is not None:  # no timer fires after quit: take the grandchildren down now
            _killpg(pgid, signal.SIGKILL)

    # ---- running one child -----------------------------------------------------------------------
    def _spawn(self) -> None:
        self._requested = self._terminated = self._restart_after_stop = False
        self._bufs = {"stdout": bytearray(), "stderr": bytearray()}
        self._discarding = {"stdout": False, "stderr": False}
        self._tail.clear()
        self._last_error = self._pgid = None
        self._on_run_start()
        self._set_state(ProcState.STARTING)
        try:
            argv = list(self._argv_factory())
        except Exception as exc:  # a broken setting must not take the app down
            self._finish_run(None, "crashed", f"could not build the command: {exc}")
            return
        if self._log_path is not None:
            self._open_log()
        proc = QProcess(self)
        self._proc = proc
        env = QProcessEnvironment.systemEnvironment()
        # the child stops by itself if this app dies without stopping it (see desktop.utils.parent_watch)
        extra = self._env_factory() if self._env_factory is not None else {}
        for key, value in {**self._env, **extra, "PYTHONUNBUFFERED": "1",
                           "RL_SWARM_PARENT_PID": str(os.getpid())}.items():
            env.insert(key, str(value))
        proc.setProcessEnvironment(env)
        if not self.stop_by_stdin:
            proc.setStandardInputFile(QProcess.nullDevice())
        if POSIX:
            # Own session: a Ctrl-C in the app's terminal does not reach the child, and the child's
            # own children share a process group we can kill as a whole.
            flags = QProcess.UnixProcessFlag
            proc.setUnixProcessParameters(flags.CreateNewSession | flags.ResetSignalHandlers)
        proc.readyReadStandardOutput.connect(partial(self._on_ready, proc, "stdout"))
        proc.readyReadStandardError.connect(partial(self._on_ready, proc, "stderr"))
        proc.started.connect(partial(self._on_started, proc))
        proc.finished.connect(partial(self._on_finished, proc))
        proc.errorOccurred.connect(partial(self._on_error, proc))
        proc.start(argv[0], argv[1:])
        if POSIX and proc is self._proc and proc.processId():
            self._pgid = proc.processId()  # known before started(): a stop() may come first

    def _on_started(self, proc: QProcess) -> None:
        if proc is not self._proc:
            return
        self._started_at = time.monotonic()
        if self.running_on_spawn and self._state is ProcState.STARTING:
            self._set_state(ProcState.RUNNING)

    def _on_error(self, proc: QProcess, error: QProcess.ProcessError) -> None:
        # Only a failed start lacks a finished() signal; other errors are followed by one.
        if proc is self._proc and error == QProcess.ProcessError.FailedToStart:
            self._proc = None
            proc.deleteLater()
            self._finish_run(None, "crashed", proc.errorString())

    def _on_finished(self, proc: QProcess, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if proc is not self._proc:
            return
        for stream in ("stdout", "stderr"):  # whatever is still in the pipes, then a last partial line
            self._on_ready(proc, stream)
            rest = bytes(self._bufs[stream])
            self._bufs[stream].clear()
            if rest and not self._discarding[stream]:
                self._handle_line(stream, rest)
        self._proc = None
        proc.deleteLater()
        if self._pgid is not None:
            self._sweep_group(self._pgid)
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._finish_run(exit_code, "crashed" if crashed else "normal", None)

    def _finish_run(self, exit_code: int | None, exit_status: str, error: str | None) -> None:
        self._kill_timer.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        requested = self._requested
        if requested:  # our own SIGTERM/SIGKILL is not a crash; an error exit code still is
            failed = exit_code is None or (exit_status == "normal" and exit_code != 0)
        else:
            failed = exit_code != 0 or exit_status != "normal"
        if error:
            self._last_error = error
        elif failed and not self._last_error and self._tail:
            self._last_error = self._tail[-1]
        state = ProcState.CRASHED if failed else ProcState.STOPPED
        outcome = Outcome(exit_code=exit_code, exit_status=exit_status, state=state,
                          was_requested_stop=requested, last_error=self._last_error if failed else None,
                          stderr_tail="\n".join(self._tail), restarts=self._restarts,
                          name=self.name, last_round=self._last_round())
        self._set_state(state)
        retry = None
        if failed and not requested:
            if self._started_at and time.monotonic() - self._started_at >= self.policy.reset_after:
                self._restarts = 0
            if self._restarts < self.policy.max_restarts:
                self._restarts += 1
                retry = self.policy.delay(self._restarts)
                self._restart_timer.start(int(retry * 1000))  # before finished: a slot may stop()
        self._started_at = 0.0
        self.finished.emit(outcome)
        if retry is not None:
            self.restarting.emit(self._restarts, retry)
        elif failed and not requested:
            self.gave_up.emit(outcome)
        if self._restart_after_stop:
            self._restart_after_stop = False
            QTimer.singleShot(0, self.start)

    def _kill(self) -> None:
        if self._pgid is not None:
            _killpg(self._pgid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.kill()

    def _sweep_group(self, pgid: int) -> None:
        """The child is gone; its group may still hold grandchildren (e.g. a DHT daemon)."""
        if _killpg(pgid, signal.SIGTERM):
            # A process group's id cannot be handed out again while the group has members, so
            # this only reaches our leftovers (or nothing).
            QTimer.singleShot(SWEEP_GRACE_MS, partial(_killpg, pgid, signal.SIGKILL))

    def _set_state(self, state: ProcState) -> None:
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state)

    # ---- output ----------------------------------------------------------------------------------
    def _on_ready(self, proc: QProcess, stream: str) -> None:
        if proc is not self._proc:
            return
        chunk = (proc.readAllStandardOutput() if stream == "stdout" else proc.readAllStandardError()).data()
        if not chunk:
            return
        buf = self._bufs[stream]
        buf += chunk
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                break
            line = bytes(buf[:cut])
            del buf[:cut + 1]
            if self._discarding[stream]:
                self._discarding[stream] = False  # the end of a line already dropped
            elif len(line) <= MAX_LINE:
                self._handle_line(stream, line)
            else:
                self.log_line.emit(stream, f"[{self.name}: a line over {MAX_LINE} bytes was dropped]")
        if len(buf) > MAX_LINE and not self._discarding[stream]:
            self._discarding[stream] = True  # skip the rest of this line as it arrives
            self.log_line.emit(stream, f"[{self.name}: a line over {MAX_LINE} bytes was dropped]")
        if self._discarding[stream]:
            buf.clear()

    def _handle_line(self, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if self._log_file is not None:
            self._log_file.write(f"{stream}: {text}\n")
        if stream == "stderr":
            if text.strip():
                self._tail.append(text)
            self.log_line.emit(stream, text)
            return
        obj = None
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                pass
        if isinstance(obj, dict):
            try:
                event = events.validate(obj)
            except events.EventError:
                self.json_line.emit(obj)
            else:
                if event["type"] == "error":
                    self._last_error = event["message"]
                elif event["type"] == "log" and record_level(event["level"]) >= WARNING:
                    self._tail.extend(event["message"].splitlines()[-TAIL_LINES:])  # what a crash report shows
                self._on_event(event)
                self.event.emit(event)
                return
        self.log_line.emit(stream, text)

    def _open_log(self) -> None:
        """Append this run's output to log_path; one old generation is kept past 5 MiB."""
        path = self._log_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
                path.replace(path.with_name(path.name + ".1"))
            self._log_file = open(path, "a", encoding="utf-8")
        except OSError as exc:
            self.log_line.emit("stderr", f"[{self.name}: cannot write {path}: {exc}]")

    # ---- hooks for subclasses --------------------------------------------------------------------
    def _on_run_start(self) -> None: ...

    def _on_event(self, event: dict) -> None: ...

    def _last_round(self) -> int | None:
        return None


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
