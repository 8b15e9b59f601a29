"""Real `rl-swarm` processes for tests and the chaos suite (benchmarks/chaos.py): start, read, kill.

Real `rl-swarm` subprocesses only: a node or service is started as a user would, its JSON-line
events read on a thread, and it is stopped or killed like a user or an OS would.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from desktop import events

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "desktop.cli"]


def env(**extra: str) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (a node's DHT process and p2pd, the services' anvil)."""
    try:
        main = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [main, *main.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


class EventProcess:
    """An `rl-swarm` subprocess whose stdout carries events; stderr goes to a file beside its data,
    and the events, as read, to ``<log>.events.jsonl`` (for a look after a long run fails)."""

    def __init__(self, args: list[str], log: Path, extra_env: dict | None = None, prefix: list[str] | None = None):
        from desktop import events

        self._events = events
        log.parent.mkdir(parents=True, exist_ok=True)
        self._err = open(log, "ab")
        self._trace = open(log.with_name(log.name + ".events.jsonl"), "a", encoding="utf-8")
        # prefix: e.g. ["ip", "netns", "exec", NS], to run it on another "machine"
        self.proc = subprocess.Popen((prefix or []) + CLI + args, stdout=subprocess.PIPE, stderr=self._err, text=True, cwd=ROOT,
                                     env=env(**(extra_env or {})), start_new_session=True)
        self.events: list[dict] = []
        self._new: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = self._events.decode(line)
            except self._events.EventError:
                continue
            self.events.append(event)
            self._new.put(event)
            self._trace.write(line if line.endswith("\n") else line + "\n")
            self._trace.flush()
        self._trace.close()
        self._new.put(None)

    def wait_for(self, test, timeout: float) -> dict | None:
        """The next event passing ``test`` within ``timeout`` s, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._new.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if event is None:
                return None
            if test(event):
                return event
        return None

    def count(self, kind: str) -> int:
        return sum(e["type"] == kind for e in self.events)

    def rss_mb(self) -> float:
        return tree_rss_mb(self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._err.close()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever it left in its group
        except (ProcessLookupError, PermissionError):
            pass
        self._err.close()
        return self.proc.returncode


class Services:
    """`rl-swarm services` on fixed ports in ``data`` (kept across restarts, as config says)."""

    def __init__(self, data: Path, round_period: float = 3600):
        self.data = data
        self.round_period = round_period
        (data / "config").mkdir(parents=True, exist_ok=True)
        cfg = data / "config" / "config.yaml"
        if not cfg.exists():
            cfg.write_text(f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\n")
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    @property
    def services_file(self) -> Path:
        return self.data / "chain" / "services.json"

    def start(self, timeout: float = 120) -> dict:
        err = open(self.data / "services-stderr.log", "ab")
        self.proc = subprocess.Popen(CLI + ["services", "--json", "--round-period", str(self.round_period),
                                            "--data-dir", str(self.data)], stdout=subprocess.PIPE, stderr=err,
                                     text=True, cwd=ROOT, env=env())
        err.close()
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not got or not got[0].strip():
            raise RuntimeError(f"services did not start: see {self.data / 'services-stderr.log'}")
        self.info = events.decode(got[0])  # a services_ready event, validated
        assert self.info["type"] == "services_ready", self.info
        return self.info

    def token(self) -> str:
        return Path(self.info["api_token_file"]).read_text().strip()

    def api(self, path: str, body: dict | None = None, timeout: float = 60):
        req = urllib.request.Request(self.info["login_url"] + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token()}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return json.loads(reply.read())

    def account(self, email: str) -> str:
        return self.api("/api/local-account", {"email": email})["orgId"]

    def anvil(self) -> psutil.Process | None:
        try:
            return next(p for p in psutil.Process(self.proc.pid).children() if "anvil" in p.name())
        except (psutil.Error, StopIteration):
            return None

    def rss_mb(self) -> float:
        return tree_rss_mb(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the services process only (its anvil is left running, as a crash leaves it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def node_args(data: Path, *extra: str, config: Path | None = None, dashboard: bool = False) -> list[str]:
    """A tiny node's command line; without its web dashboard unless asked (nodes side by side
    would race for its port)."""
    args = ["node", "--pool", "tiny", "--json-events", "--data-dir", str(data)]
    args += [] if dashboard else ["--no-dashboard"]
    return args + (["--config", str(config)] if config else []) + list(extra)


def leftovers(path: Path) -> list[str]:
    """Processes whose command line names ``path`` (nothing should outlive a scenario)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in proc.info["cmdline"] or []):
                found.append(" ".join(proc.info["cmdline"])[:120])
        except psutil.Error:
            pass
    return found
