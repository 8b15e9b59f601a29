"""The Swarm page: every peer this one knows of, from the DHT and from the chain, and the leaderboard.

Two sources, neither of which may block the window: what the node heard on the DHT arrives with
its events (``NodeStatus.heard``: round and time of each peer's last rollouts), and the chain's
view (registered peers, total rewards, wins, the winner leaderboard) comes from `rl-swarm chain
status --json`, run as a child process every ``REFRESH_S`` seconds with a time limit. The
page merges both into one bounded table; this peer's row is marked and bold.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from desktop.gui.processes.background import BackgroundCommand
from desktop.events.swarm_view import cells, merge

REFRESH_S = 30
TIMEOUT_MS = 20_000
MAX_REPLY = 4 * 1024 * 1024
COLUMNS = ["Peer", "Peer id", "Round", "Total reward", "Wins", "Last heard"]


class SwarmPage(QWidget):
    def __init__(self, command: Callable[[], list[str]] | None, status: Callable[[], object], *,
                 refresh_s: float = REFRESH_S, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop.identity import peer_name  # names from peer ids, as everywhere else

        self._names = peer_name
        self.command = command
        self.status = status
        self.chain: dict | None = None
        self.chain_error = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        self.title = QLabel("<h2>Swarm</h2>")
        self.summary = QLabel("Looking for peers…")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.leaders = QLabel("")
        self.leaders.setWordWrap(True)
        for widget in (self.title, self.summary, self.table, self.leaders):
            layout.addWidget(widget)
        self.child = BackgroundCommand(self, TIMEOUT_MS, max_stdout=MAX_REPLY)
        self.child.done.connect(self._done)
        self._timer = QTimer(self, interval=int(refresh_s * 1000))
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._redraw = QTimer(self, interval=5000)  # the node's news and "last heard" move on their own
        self._redraw.timeout.connect(self.render)
        self._redraw.start()
        self.refresh()

    # ---- the chain's view, from a child process -------------------------------------------------
    def refresh(self) -> None:
        if self.command is None:  # a node attached from elsewhere: this machine's chain is not its
            self.chain_error = "the chain is read on the node's own machine"
            self.render()
            return
        self.child.run(self.command())  # while the last one still runs, nothing: never more than one

    def _done(self, code: int, out: bytes, err: list, timed_out: bool) -> None:
        if timed_out:
            self.chain_error = "the chain did not answer in time"
        if code == 0 and not timed_out:
            try:
                report = json.loads(out)
                self.chain, self.chain_error = (report, "") if isinstance(report, dict) else (None, "bad reply")
            except ValueError:
                self.chain_error = "the chain status could not be read"
        elif not self.chain_error:
            self.chain_error = (err[-1] if err else "the chain status failed").removeprefix("rl-swarm: ")
        self.render()

    # ---- the table -----------------------------------------------------------------------------
    def render(self) -> None:
        status = self.status()
        heard = dict(getattr(status, "heard", {}) or {})
        me = getattr(status, "peer_id", "") or None
        rows = merge(self.chain, heard, me, self._names, getattr(status, "round", None))
        now = time.time()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(cells(row, now)):
                item = QTableWidgetItem(text)
                if row["me"]:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(i, j, item)
        others = len(rows) - (1 if me else 0)
        chain = self.chain or {}
        where = (f"chain round {chain.get('round')} ({chain.get('profile')})" if self.chain else
                 f"chain: {self.chain_error}" if self.chain_error else "reading the chain…")
        self.summary.setText(f"{others} other peer(s) known: {len(heard)} heard on the DHT, "
                             f"{len(chain.get('peers', []))} registered on the chain; {where}")
        board = [e for e in chain.get("leaderboard", []) if isinstance(e, dict)][:5]
        self.leaders.setText("Leaderboard: " + ", ".join(f"{i + 1}. {e.get('name')} ({e.get('wins')} wins)"
                                                         for i, e in enumerate(board)) if board else "")
