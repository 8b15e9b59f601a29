"""The dashboard: who this peer is, what it is doing, and how its rounds went.

It only displays: the NodeSupervisor turns events into a ``NodeStatus`` and the page renders that
snapshot (plus the process state), so the page holds no protocol logic of its own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QScrollArea, QSizePolicy, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from desktop.gui import theme
from desktop.gui.processes.supervisor import ProcState
from desktop.gui.widgets.cards import StatCard, StatePill
from desktop.gui.widgets.charts import LineChart, StackedBarChart
from desktop.gui.widgets.labels import ElidedLabel

TABLE_ROWS = 50
CARDS_ONE_ROW_PX = 1100  # the page's width from which the seven cards fit in one row
PHASES = (("generate_s", "generate"), ("judge_s", "judge"), ("train_s", "train"), ("comm_s", "comm"))  # round_finished timings
_COLUMNS = ["Round", "Reward", "Loss", "Total", "Gen.", "Judge", "Train", "Comm"]


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _secs(value) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


class ActionButton(QPushButton):
    """A button that mirrors a QAction (text, icon, enabled, visible), so the menu, the tray
    and the page always offer the same commands in the same state."""

    def __init__(self, action: QAction, object_name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action = action
        if object_name:
            self.setObjectName(object_name)
        self.clicked.connect(action.trigger)
        action.changed.connect(self._sync)
        self.setCursor(Qt.PointingHandCursor)
        self._sync()

    def _sync(self) -> None:
        self.setText(self.action.text().replace("&", ""))
        self.setIcon(self.action.icon())
        self.setEnabled(self.action.isEnabled())
        self.setVisible(self.action.isVisible())
        self.setToolTip(self.action.toolTip())


class DashboardPage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.status = None
        self._proc_state = ProcState.STOPPED
        self._history_key = None  # which rounds the charts show now
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        body.setObjectName("page")
        scroll.setWidget(body)
        root = QVBoxLayout(body)
        root.setContentsMargins(28, 22, 28, 24)
        root.setSpacing(16)

        self._build_header(root)
        self._build_cards(root)
        self._build_charts(root)
        self.restyle()

    def _build_header(self, root: QVBoxLayout) -> None:
        """Identity on the left; state and commands on the right; what the node does below."""
        header = QHBoxLayout()
        header.setSpacing(12)
        who = QVBoxLayout()
        who.setSpacing(2)
        self.name_label = QLabel("Your peer")
        self.name_label.setObjectName("h1")
        self.name_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        id_row = QHBoxLayout()
        id_row.setSpacing(6)
        self.peer_id_label = ElidedLabel("peer id appears once the node has started", mode=Qt.ElideMiddle)
        self.peer_id_label.setObjectName("mono")
        self.peer_id_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.copy_button = QPushButton()
        self.copy_button.setObjectName("link")
        self.copy_button.setToolTip("Copy the peer id")
        self.copy_button.setCursor(Qt.PointingHandCursor)
        self.copy_button.clicked.connect(self.copy_peer_id)
        self.copy_button.setVisible(False)
        id_row.addWidget(self.peer_id_label)
        id_row.addWidget(self.copy_button)
        id_row.addStretch(1)
        who.addWidget(self.name_label)
        who.addLayout(id_row)
        header.addLayout(who, 1)
        self.pill = StatePill()
        header.addWidget(self.pill, 0, Qt.AlignVCenter)
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(8)
        header.addLayout(self.buttons)
        root.addLayout(header)

        self.activity = QLabel("The node is not running. Press Start to join the swarm.")
        self.activity.setObjectName("muted")
        root.addWidget(self.activity)


    def _build_cards(self, root: QVBoxLayout) -> None:
        cards = QGridLayout()
        cards.setSpacing(12)
        self.card_round = StatCard("Round", "—", "stage —")
        self.card_model = StatCard("Model", "—", "device —")
        self.card_peers = StatCard("Peers seen", "0", "in shared rounds")
        self.card_last = StatCard("Last reward", "—", "mean of own rollouts")
        self.card_total = StatCard("Total reward", "0", "sum of round means")
        self.card_time = StatCard("Last round", "—", "wall time")
        self.card_skill = StatCard("Skill", "—", "held-out problems solved")
        self.cards = [self.card_round, self.card_model, self.card_peers, self.card_last, self.card_total,
                      self.card_skill, self.card_time]
        self.card_grid = cards
        self._card_columns = 0
        self._layout_cards(len(self.cards))
        root.addLayout(cards)


    def _build_charts(self, root: QVBoxLayout) -> None:
        charts = QGridLayout()
        charts.setSpacing(12)
        self.reward_chart = LineChart("Reward and skill", empty_text="Rewards appear after the first round")
        self.loss_chart = LineChart("Training loss",
                                    empty_text="No loss yet (a round whose rollouts all score the same "
                                               "skips the update)")
        self.time_chart = StackedBarChart("Round time", unit="s")
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setObjectName("flatTable")
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(38)
        header.setSectionResizeMode(QHeaderView.Stretch)  # short texts: equal widths fit half a window
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)  # the longest title, never cut
        for c in range(1, len(_COLUMNS)):
            self.table.horizontalHeaderItem(c).setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setMinimumHeight(150)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        charts.addWidget(self.reward_chart, 0, 0)
        charts.addWidget(self.loss_chart, 0, 1)
        charts.addWidget(self.time_chart, 1, 0)
        table_card = QFrame()  # framed like the charts, the table itself borderless inside
        table_card.setObjectName("card")
        table_box = QVBoxLayout(table_card)
        table_box.setContentsMargins(1, 10, 1, 1)
        table_box.setSpacing(6)
        title = QLabel("Recent rounds  <span style='font-weight:400'>(times in seconds)</span>")
        title.setObjectName("h2")
        title.setContentsMargins(15, 0, 0, 0)
        table_box.addWidget(title)
        table_box.addWidget(self.table)
        charts.addWidget(table_card, 1, 1)
        charts.setRowStretch(0, 1)
        charts.setRowStretch(1, 1)
        root.addLayout(charts, 1)

    def _layout_cards(self, columns: int) -> None:
        if columns == self._card_columns:
            return
        self._card_columns = columns
        for card in self.cards:
            self.card_grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self.card_grid.addWidget(card, i // columns, i % columns)
        for c in range(len(self.cards)):  # equal columns: a long value elides instead of widening one
            self.card_grid.setColumnStretch(c, 1 if c < columns else 0)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        # seven cards in a row from CARDS_ONE_ROW_PX wide, rows of four below (a 1024 px window)
        self._layout_cards(len(self.cards) if self.width() >= CARDS_ONE_ROW_PX else 4)

    # ---- wiring ---------------------------------------------------------------------------------
    def bind_actions(self, *actions: tuple[QAction, str]) -> None:
        """Buttons for (action, style) pairs, e.g. (start, "primary")."""
        for action, style in actions:
            self.buttons.addWidget(ActionButton(action, style))

    def show_identity(self, name: str, peer_id: str) -> None:
        """The peer as read from swarm.pem before any node has run."""
        if self.status is None or not getattr(self.status, "peer_id", ""):
            self._set_identity(name, peer_id)

    def _set_identity(self, name: str, peer_id: str) -> None:
        self.name_label.setText(name.title() if name else "Your peer")
        self.peer_id_label.setText(peer_id or "")
        self.peer_id_label.setToolTip(peer_id)
        self.copy_button.setVisible(bool(peer_id))

    def copy_peer_id(self) -> None:
        QGuiApplication.clipboard().setText(self.peer_id_label.text())
        self.copy_button.setToolTip("Copied")

    def set_proc_state(self, state: ProcState) -> None:
        self._proc_state = state
        self.pill.set_state(state)
        if state is ProcState.STOPPED and (self.status is None or not self.status.history):
            self.activity.setText("The node is not running. Press Start to join the swarm.")
        elif state is not ProcState.RUNNING and self.status is not None:
            self.activity.setText(self._activity_text(self.status, state))

    # ---- rendering --------------------------------------------------------------------------------
    def apply_status(self, status) -> None:
        """Render a NodeStatus snapshot."""
        self.status = status
        if status.peer_id:
            self._set_identity(status.name, status.peer_id)
        self.activity.setText(self._activity_text(status, self._proc_state))
        self.card_round.set("—" if status.round is None else str(status.round),
                            f"stage {'—' if status.stage is None else status.stage}")
        self.card_model.set(status.model or "—", f"on {status.device}" if status.device else "device —")
        self.card_model.setToolTip(status.model)
        self.card_peers.set(str(len(status.peers_seen)),
                            "in shared rounds" if status.peers_seen else "training alone so far")
        last = status.last_reward
        self.card_last.set(_num(last), None, None if last is None else ("ok" if last > 0 else "muted"))
        rounds = f"over {len(status.history)} round{'s' * (len(status.history) != 1)}"
        if status.submitted or status.pending:  # what the coordinator has of it
            rounds += f" · {status.submitted} on chain" + (f", {status.pending} queued" if status.pending else "")
        self.card_total.set(_num(float(status.total_reward), 2), rounds,
                            "warn" if status.chain_error and status.pending else None)
        self.card_total.setToolTip(f"Not yet on chain: {status.chain_error}" if status.chain_error else "")
        self.card_time.set(_secs(status.last_round_seconds),
                           "wall time" if status.last_completed is None else f"round {status.last_completed}")
        skill = status.skill
        self.card_skill.set("—" if skill is None else f"{skill['pass_rate']:.0%}",
                            "held-out problems solved" if skill is None else
                            f"of {skill['problems']} held-out, round {skill['round']}" if skill.get("problems")
                            else f"held-out, round {skill['round']}")
        self.card_skill.setToolTip("Problems this peer never trains on, answered greedily every few rounds: "
                                   "unlike the training reward, skill cannot rise by memorising."
                                   + (f"\nPolicy health: own tokens' mean log-prob {status.own_logp:.2f} "
                                      "(falling far below its best means the policy is spreading out)"
                                      if status.own_logp is not None else ""))
        self._render_history(status.history)

    def _activity_text(self, status, state: ProcState) -> str:
        if state is ProcState.CRASHED:
            return "The node stopped unexpectedly — see Logs for details."
        if state is ProcState.STOPPED:
            done = status.last_completed
            return "Stopped." + (f" Last completed round: {done}." if done is not None else "")
        return status.state[:1].upper() + status.state[1:] if status.state else ""

    def _render_history(self, history: list[dict]) -> None:
        # Rows are added only when a round finishes: every other event (download progress, a
        # chain status) leaves the charts and the table as they are, so they are not redrawn.
        key = (len(history), id(history[-1]) if history else None)  # rows are kept, never rebuilt
        if key == self._history_key:
            return
        self._history_key = key
        rounds = [row["round"] for row in history]
        self.reward_chart.set_data(rounds, {"reward": [row["reward_mean"] for row in history],
                                            "skill (held-out pass rate)": [row.get("skill") for row in history]})
        self.loss_chart.set_data(rounds, {"loss": [row.get("loss") for row in history]})
        self.time_chart.set_data(rounds, {label: [row.get(key) for row in history] for key, label in PHASES})
        recent = history[-TABLE_ROWS:][::-1]
        self.table.setUpdatesEnabled(False)
        self.table.setRowCount(len(recent))
        for r, row in enumerate(recent):
            total = sum(row.get(k) or 0.0 for k, _ in PHASES)
            # seconds, two decimals: short enough for eight columns in half the window
            cells = [str(row["round"]), _num(row["reward_mean"]), _num(row.get("loss"), 4), f"{total:.2f}",
                     *(f"{row.get(k) or 0.0:.2f}" for k, _ in PHASES)]
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter if c else Qt.AlignCenter)
                    self.table.setItem(r, c, item)
                item.setText(text)
        self.table.setUpdatesEnabled(True)

    def restyle(self) -> None:
        """Colours that stylesheets cannot reach (icons, tones) after a theme switch."""
        self.copy_button.setIcon(theme.icon("copy", theme.current().muted, 32))
        for card in self.cards:
            card.restyle()
        for chart in (self.reward_chart, self.loss_chart, self.time_chart, self.pill):
            chart.update()
        QTimer.singleShot(0, self.update)
