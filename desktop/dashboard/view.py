"""What the web dashboard shows of one peer, folded from the same events the app reads (the one
source of truth: desktop.events), plus its history from before this launch and its last log lines.
Pure: no web server, no Qt."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path

from desktop.events.history import history_file, read_history
from desktop.events.status import NodeStatus
from desktop.events.text import describe
from desktop.utils.logs import redact

CHART_ROUNDS = 300
LOG_LINES = 60
EVENTS_KEPT = 2000  # for an app attached to this node (`/api/events`): it reads them every second


class PeerView:
    """One peer as the page sees it. ``__call__`` takes events (an EventSink listener)."""

    def __init__(self, label: str, data_dir: Path | None = None) -> None:
        self.label = label
        self.data_dir = data_dir
        self.status = NodeStatus()
        if data_dir is not None:
            self.status.load_history(read_history(history_file(data_dir)))
        self.lines: deque[dict] = deque(maxlen=LOG_LINES)
        self.chain: dict | None = None  # the last chain_status
        self.exit: dict | None = None    # node_stopped, once it came
        self.updated = time.time()
        self.events: deque[tuple[int, dict]] = deque(maxlen=EVENTS_KEPT)
        self.seq = 0
        self._lock = threading.Lock()

    def __call__(self, ev: dict) -> None:
        with self._lock:
            self.seq += 1
            self.events.append((self.seq, ev))
            self.status.apply(ev)
            kind = ev["type"]
            if kind == "chain_status":
                self.chain = {"reachable": ev["reachable"], "message": ev["message"]}
            elif kind == "node_stopped":
                self.exit = {"reason": ev["reason"], "exit_code": ev["exit_code"]}
            elif kind == "node_started":
                self.exit = None
            if kind != "download":  # progress of a download: not a line worth keeping
                level, text = describe(ev)
                self.note(logging.getLevelName(level), text, ev.get("ts"))
            self.updated = time.time()

    def process_ended(self, exit_code: int) -> None:
        """The peer's process is gone. Killed, it said no node_stopped: it crashed."""
        with self._lock:
            if self.exit is None:
                self.exit = {"reason": f"the process ended with code {exit_code}", "exit_code": exit_code}
                self.updated = time.time()

    def note(self, level: str, message: str, ts: float | None = None) -> None:
        self.lines.append({"ts": ts or time.time(), "level": level, "message": redact(str(message))[:500]})

    def state(self) -> str:
        """One word the page colours: training, waiting, paused, stopped, crashed."""
        s = self.status
        if self.exit is not None:
            return "stopped" if self.exit["exit_code"] == 0 else "crashed"
        if s.paused:
            return "paused"
        if s.state.startswith("round"):
            return "training"
        return "waiting" if s.peer_id else "starting"

    def events_after(self, seq: int, limit: int = 500) -> dict:
        """Events newer than ``seq`` (at most ``limit``), and the number to ask after next time.
        ``missed``: events that were dropped before the reader came back for them."""
        with self._lock:
            newer = [(n, ev) for n, ev in self.events if n > seq][:limit]
            oldest = self.events[0][0] if self.events else self.seq + 1
            return {"events": [ev for _, ev in newer], "next": newer[-1][0] if newer else max(seq, 0),
                    "missed": max(0, oldest - seq - 1) if seq < oldest else 0}

    def to_json(self) -> dict:
        with self._lock:
            s = self.status
            return {"label": self.label, "peer_id": s.peer_id, "name": s.name, "model": s.model, "device": s.device,
                    "state": self.state(), "activity": s.state, "paused": s.paused, "round": s.round,
                    "last_reward": s.last_reward, "total_reward": round(s.total_reward, 4),
                    "rounds": len(s.history), "skill": s.skill, "own_logp": s.own_logp,
                    "peers_seen": len(s.peers_seen), "transplanted": s.transplanted,
                    "chain": {"submitted": s.submitted, "pending": s.pending, "error": s.chain_error,
                              **(self.chain or {})},
                    "exit": self.exit, "history": s.history[-CHART_ROUNDS:], "log": list(self.lines),
                    "updated": self.updated, "seq": self.seq}


class LogFeed(logging.Handler):
    """Log records of this process (INFO and up) into a view's last lines, redacted."""

    def __init__(self, view: PeerView) -> None:
        super().__init__(logging.INFO)
        self.view = view

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.view.note(record.levelname, f"{record.name}: {record.getMessage()}", record.created)
        except Exception:  # a log line must never break the node
            pass
