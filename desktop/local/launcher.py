"""`rl-swarm swarm`: N node processes on this machine, bootstrapped through the first one.

Each peer is a real `rl-swarm node` subprocess with its own data dir (so its own identity, ports,
checkpoints and logs), watched through its JSON-line events. Stopping the launcher (Ctrl-C,
SIGTERM) stops every peer with SIGTERM, then kills what has not exited: nothing is left behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from desktop.chain.status import ChainUnavailable, chain_status, format_status
from desktop.config import load_config
from desktop.dashboard.serve import open_dashboard
from desktop.dashboard.view import PeerView
from desktop.events import EventError, decode
from desktop.events.status import NodeStatus
from desktop.events.text import describe
from desktop.local.services_process import ServicesFailed, ServicesProcess
from desktop.machine import pause_control
from desktop.utils.frozen import self_command
from desktop.utils.paths import AppPaths
from desktop.utils.proc_stop import terminate_then_kill


RESTART_WAIT_S = 15.0    # before a crashed peer's first restart; the second waits twice that, …
CRASH_WINDOW_S = 600.0
MAX_CRASHES = 5          # crashes within the window after which a peer stays down


@dataclass
class Peer:
    index: int
    role: str
    data_dir: Path
    proc: subprocess.Popen | None = None
    status: NodeStatus = field(default_factory=lambda: NodeStatus(state="starting"))  # from its events
    ended: str | None = None  # how the process ended: "finished", "exited N", "error"
    maddrs: list = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    exit_code: int | None = None
    reader: threading.Thread | None = None
    crashes: list = field(default_factory=list)  # monotonic times of its recent crashes

    @property
    def label(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def state(self) -> str:
        return self.ended or self.status.state


class LocalSwarm:
    def __init__(self, base_dir: Path, *, peers: int, rounds: int, proposer: bool = False,
                 json_events: bool = False, node_args: list[str] | None = None, out: IO[str] = sys.stdout,
                 startup_timeout: float = 180.0, gather_timeout: float = 60.0, chain: bool = True,
                 devices: list[str] | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.rounds = rounds
        self.json_events = json_events
        self.node_args = list(node_args or [])
        self.devices = list(devices or [])  # solver i trains on devices[i] (one peer per GPU)
        self.out = out
        self.startup_timeout = startup_timeout
        self.gather_timeout = gather_timeout
        self.peers = [Peer(i, "solver", self.base_dir / f"peer-{i}") for i in range(peers)]
        if proposer:
            self.peers.append(Peer(peers, "proposer", self.base_dir / "proposer"))
        self.solvers = [p for p in self.peers if p.role == "solver"]
        self.views = {p.label: PeerView(p.label, p.data_dir) for p in self.peers}  # the web dashboard's
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tty = hasattr(out, "isatty") and out.isatty()
        self._last_table = ""
        self.services = None
        if chain:
            self.services = ServicesProcess(self.base_dir / "services")
        self.org_ids: dict[int, str] = {}

    # ---- processes -----------------------------------------------------------------------------
    def _command(self, peer: Peer, bootstrap: list[str]) -> list[str]:
        cmd = [*self_command("node"), "--json-events", "--swarm", "--no-dashboard",
               "--data-dir", str(peer.data_dir), "--role", peer.role,
               "--expected-peers", str(len(self.solvers) - 1), "--gather-timeout", str(self.gather_timeout)]
        if peer.role == "solver" and self.rounds:  # 0: until stopped
            cmd += ["--rounds", str(self.rounds)]
            if peer.index < len(self.devices):
                cmd += ["--device", self.devices[peer.index]]
        for maddr in bootstrap:
            cmd += ["--initial-peer", maddr]
        if self.services is not None:
            cmd += ["--services", str(self.services.services_file)]
            if peer.index in self.org_ids:
                cmd += ["--org-id", self.org_ids[peer.index]]
            if peer.index == 0:
                cmd.append("--publish-bootnode")
        return cmd + self.node_args

    def _spawn(self, peer: Peer, bootstrap: list[str]) -> None:
        peer.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(peer.data_dir / "stderr.log", "ab")
        # own process group: a Ctrl-C in the terminal reaches the launcher, which stops peers in order
        peer.proc = subprocess.Popen(self._command(peer, bootstrap), stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        stderr.close()
        peer.reader = threading.Thread(target=self._read, args=(peer,), daemon=True, name=peer.label)
        peer.reader.start()

    def _read(self, peer: Peer) -> None:
        assert peer.proc is not None and peer.proc.stdout is not None
        for line in peer.proc.stdout:
            try:
                event = decode(line)
            except EventError:
                continue  # a node only prints events; anything else is noise
            self.views[peer.label](event)
            with self._lock:
                self._update(peer, event)
                if self.json_events:
                    self.out.write(json.dumps({**event, "peer": peer.label}, separators=(",", ":")) + "\n")
                    self.out.flush()
                elif event["type"] in ("node_started", "round_finished", "node_stopped", "error", "joined_round"):
                    self._render() if self._tty else self._log_line(peer, event)
        peer.exit_code = peer.proc.wait()
        # a peer killed without a word (kill -9, out of memory) said no node_stopped: the page says so
        self.views[peer.label].process_ended(peer.exit_code)
        with self._lock:
            if peer.ended != "finished":
                peer.ended = "finished" if peer.exit_code == 0 else f"exited {peer.exit_code}"
            peer.ready.set()
            if not self.json_events and self._tty:
                self._render()
        if peer.exit_code != 0 and self.rounds == 0:
            self._restart(peer)

    def _restart(self, peer: Peer) -> None:
        """A swarm that runs until stopped (a container, a server) brings a crashed peer back from its
        checkpoint, as the app's supervisor does; a peer that keeps crashing is left crashed (the
        health check then says so) rather than restarted in a loop."""
        now = time.monotonic()
        peer.crashes = [t for t in peer.crashes if now - t < CRASH_WINDOW_S] + [now]
        if len(peer.crashes) > MAX_CRASHES:
            self._say(f"{peer.label} crashed {len(peer.crashes)} times in {CRASH_WINDOW_S / 60:.0f} minutes; "
                      f"not restarting it (its log: {peer.data_dir / 'logs' / 'node.log'})")
            return
        wait = RESTART_WAIT_S * len(peer.crashes)
        self._say(f"{peer.label} exited with code {peer.exit_code}; restarting it in {wait:.0f} s")
        if self._stopping.wait(wait):
            return
        others = [p.maddrs for p in self.peers if p is not peer and p.maddrs and p.proc and p.proc.poll() is None]
        with self._lock:
            if self._stopping.is_set():
                return
            peer.ended, peer.exit_code = None, None
            peer.ready.clear()
            self._spawn(peer, others[0] if others else [])

    @staticmethod
    def _update(peer: Peer, e: dict) -> None:
        peer.status.apply(e)  # the same reading of events as the app's dashboard
        kind = e["type"]
        if kind == "dht_ready":
            peer.maddrs = e["maddrs"]
            peer.ready.set()
        elif kind == "error":
            peer.ended = "error"
        elif kind == "node_stopped":
            peer.ended = "finished" if e["exit_code"] == 0 else "error"

    def _log_line(self, peer: Peer, e: dict) -> None:
        """Not a terminal (a log, a pipe): one line per event instead of redrawing a table."""
        what = describe(e)[1]
        if e["type"] == "round_finished":
            what += (f"; {len(peer.status.peers_seen)} peers seen, {peer.status.transplanted} rollouts "
                     "transplanted so far")
        self.out.write(f"{peer.label:11} {what}\n")
        self.out.flush()

    def _render(self) -> None:
        rows = [f"{'peer':11} {'name':26} {'round':>5} {'reward':>7} {'skill':>5} {'peers':>5} {'transpl.':>8}  state"]
        for p in self.peers:
            st = p.status
            reward = "" if st.last_reward is None else f"{st.last_reward:+.3f}"
            skill = "" if st.skill is None else f"{st.skill['pass_rate']:.0%}"  # held-out pass rate
            rnd = "" if st.round is None else str(st.round)
            rows.append(f"{p.label:11} {st.name[:26]:26} {rnd:>5} {reward:>7} {skill:>5} {len(st.peers_seen):>5} "
                        f"{st.transplanted:>8}  {p.state}")
        table = "\n".join(rows)
        if table == self._last_table:
            return
        if self._tty and self._last_table:
            self.out.write(f"\x1b[{self._last_table.count(chr(10)) + 1}F\x1b[J")  # redraw in place
        elif self._last_table:
            self.out.write("\n")
        self.out.write(table + "\n")
        self.out.flush()
        self._last_table = table

    # ---- lifecycle -----------------------------------------------------------------------------
    def run(self) -> int:
        """Start every peer, wait for the solvers to finish, stop the rest. Returns an exit code."""
        if self.services is not None:
            try:
                self.services.start()
                for peer in self.solvers:  # one account per peer, as if each had its own user
                    self.org_ids[peer.index] = self.services.create_account(f"peer-{peer.index}@local.rl-swarm.net")
            except ServicesFailed as exc:
                self._say(str(exc))
                return 1
        first = self.peers[0]
        self._spawn(first, [])
        if not first.ready.wait(self.startup_timeout) or not first.maddrs:
            self._say(f"the first peer did not start its DHT (see {first.data_dir / 'stderr.log'})")
            self.stop()
            return 1
        for peer in self.peers[1:]:
            self._spawn(peer, first.maddrs)
        for peer in self.solvers:
            while peer.reader is not None and peer.reader.is_alive():
                if self._stopping.wait(0.2):
                    break
        if not self.json_events:
            self._last_table = "" if not self._tty else self._last_table
            self._render()
            self._print_chain()
        self.stop()
        failed = [p for p in self.solvers if p.exit_code not in (0, None)]
        for p in failed:
            self._say(f"{p.label} exited with code {p.exit_code}; its log: {p.data_dir / 'logs' / 'node.log'}")
        return 1 if failed else 0

    def _print_chain(self) -> None:
        """The coordinator's view at the end: registrations, rewards, the winner leaderboard."""
        if self.services is None or not self.services.info:
            return

        config = load_config(None, {"chain.services_file": str(self.services.services_file)})
        try:
            self.out.write("\n" + format_status(chain_status(config, AppPaths.default(self.base_dir))) + "\n")
        except ChainUnavailable as exc:
            self._say(str(exc))
        self.out.flush()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM every live peer, wait up to ``grace`` seconds, then kill what is left."""
        self._stopping.set()  # no crashed peer is restarted from here on
        with self._lock:
            procs = [p.proc for p in self.peers if p.proc is not None]
        # each peer leads its own process group: its DHT daemon goes with it
        terminate_then_kill(procs, grace)
        if self.services is not None:
            self.services.stop()
        for p in self.peers:
            if p.reader is not None:
                p.reader.join(10)

    def control(self, label: str, action: str, when: str = "now", until: float | None = None) -> str:
        """The web dashboard's commands for one peer: pause, resume, finish the round and stop, stop."""
        peer = next(p for p in self.peers if p.label == label)
        path = pause_control.control_path(peer.data_dir)
        if action == "pause":
            pause_control.pause(path, when, until)
            return f"{label} pauses at the next safe point"
        if action == "resume":
            pause_control.resume(path)
            return f"{label} resumes"
        if peer.proc is None or peer.proc.poll() is not None or not hasattr(signal, "SIGUSR1"):
            raise ValueError(f"{label} is not running")
        # the node's own "finish the round, then stop" (SIGUSR1), or stop now (SIGTERM)
        peer.proc.send_signal(signal.SIGTERM if action == "stop" else signal.SIGUSR1)
        return f"{label} stops" if action == "stop" else f"{label} finishes this round, then stops"

    def _say(self, message: str) -> None:
        print(f"rl-swarm swarm: {message}", file=sys.stderr, flush=True)


def run_swarm(base_dir: Path, *, peers: int, rounds: int, proposer: bool, json_events: bool,
              node_args: list[str], chain: bool = True, devices: list[str] | None = None, dashboard=None) -> int:
    """``dashboard``: config.DashboardConfig (None: none) for one page of every peer."""
    swarm = LocalSwarm(base_dir, peers=peers, rounds=rounds, proposer=proposer, json_events=json_events,
                       node_args=node_args, chain=chain, devices=devices)
    page = None
    if dashboard is not None:
        page = open_dashboard(dashboard, base_dir, swarm.views, swarm.control, warn=swarm._say)

    def on_signal(signum, frame):
        swarm.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return swarm.run()
    finally:
        swarm.stop()
        if page is not None:
            page.stop()
