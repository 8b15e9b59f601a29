"""The tray icon (state at a glance, the node commands, notifications) and its in-app fallback.

Offscreen, under plain Xvfb and on some Linux desktops there is no system tray: then every
notification becomes a notice inside the main window and closing the window quits the app.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.gui import theme
from desktop.gui.shell.state_look import look
from desktop.gui.processes.supervisor import ProcState

_TRAY_KIND = {"info": QSystemTrayIcon.Information, "ok": QSystemTrayIcon.Information,
              "warn": QSystemTrayIcon.Warning, "error": QSystemTrayIcon.Critical}


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class TrayController(QObject):
    """Follows the node supervisor: icon by state, a menu of the window's actions (shell.actions),
    and notifications (started, joined a round, reward submitted or failed, crashed / restarting /
    gave up)."""

    def __init__(self, window, actions, supervisor=None, available: bool | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.actions = actions
        self.supervisor = supervisor
        self.available = tray_available() if available is None else available
        self.icon_name = "tray-paused"
        self.sent: list[tuple[str, str, str]] = []  # (title, text, kind) of every notification
        self._prev_state = ProcState.STOPPED
        self._start_pending = False
        self.tray: QSystemTrayIcon | None = None
        self.menu: QMenu | None = None
        if self.available:
            self.menu = QMenu()
            self.menu.addAction(actions.open)
            self.menu.addSeparator()
            for action in actions.node_commands():
                self.menu.addAction(action)
            self.menu.addSeparator()
            for action in actions.pause.all():  # snooze without stopping
                self.menu.addAction(action)
            self.menu.addSeparator()
            self.menu.addAction(actions.quit)
            self.tray = QSystemTrayIcon(self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._on_activated)
        if supervisor is not None:
            supervisor.state_changed.connect(self._on_state)
            supervisor.event.connect(self._on_event)
            supervisor.restarting.connect(self._on_restarting)
            supervisor.gave_up.connect(self._on_gave_up)
            supervisor.finished.connect(self._on_finished)
            self._set_icon(supervisor.state)
        else:
            self._set_icon(ProcState.STOPPED)
        if self.tray is not None:
            self.tray.show()

    # ---- icon ------------------------------------------------------------------------------------
    def _set_icon(self, state: ProcState) -> None:
        self.icon_name = look(state).icon
        if self.tray is not None:
            self.tray.setIcon(theme.icon(self.icon_name, size=64))
            self.tray.setToolTip(f"RL Swarm — {look(state).status}")

    def _on_activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.Trigger, QSystemTrayIcon.DoubleClick):
            self.window.bring_to_front()

    # ---- notifications ---------------------------------------------------------------------------
    def notify(self, title: str, text: str, kind: str = "info") -> None:
        """A desktop notification where there is a tray, a notice in the window otherwise."""
        self.sent.append((title, text, kind))
        if self.tray is not None and self.tray.supportsMessages():
            self.tray.showMessage(title, text, _TRAY_KIND.get(kind, QSystemTrayIcon.Information), 6000)
        else:
            self.window.show_notice(title, text, kind)

    def news(self, title: str, text: str, kind: str = "info") -> None:
        """Round-by-round news: the window's status bar only (no balloon, no banner each round)."""
        self.sent.append((title, text, kind))
        self.window.show_news(f"{title}: {text}")

    def _on_state(self, state: ProcState) -> None:
        self._set_icon(state)
        if state is ProcState.RUNNING and self._prev_state is ProcState.STARTING:
            # The event that flipped the state (node_started) names the model and comes next;
            # the timer covers a node that starts with another event (a proposer).
            self._start_pending = True
            QTimer.singleShot(0, self._announce_started)
        self._prev_state = state

    def _announce_started(self, model: str = "") -> None:
        if not self._start_pending:
            return
        self._start_pending = False
        model = model or getattr(getattr(self.supervisor, "status", None), "model", "")
        self.notify("Node started", f"Training {model}." if model else "The node is training.", "ok")

    def _on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "node_started":
            self._announce_started(str(ev.get("model", "")))
        elif kind == "paused":
            detail = str(ev.get("detail") or ev.get("reason"))
            if ev.get("reason") == "memory":  # worth a balloon: the user may want to close something
                self.notify("Node paused", f"{detail}. It goes on when memory is free again.", "warn")
            else:
                self.news("Paused", detail)
            if self.tray is not None:
                self.tray.setToolTip(f"RL Swarm — paused: {detail}")
        elif kind == "resumed":
            self.news("Resumed", f"after {float(ev.get('seconds') or 0):.0f} s paused")
            self._set_icon(self.supervisor.state if self.supervisor is not None else ProcState.STOPPED)
        elif kind == "joined_round":
            self.news("Joined a round", f"Caught up with the swarm at round {ev.get('round')}.")
        elif kind == "chain_submitted":
            if ev.get("sent"):
                self.news("Reward submitted", f"Round {ev.get('round')}: {ev['sent']} submission(s) "
                            "recorded on chain.", "ok")
            if ev.get("failed") or ev.get("error"):
                self.notify("Submission failed", f"{ev.get('error') or 'the chain refused it'}; "
                            f"{ev.get('pending', 0)} waiting to be retried.", "warn")

    def _on_restarting(self, attempt: int, delay: float) -> None:
        self.notify("Node crashed", f"Restarting in {delay:.0f} s (attempt {attempt}).", "warn")

    def _on_gave_up(self, outcome) -> None:
        self.notify("Node stopped", f"{outcome.describe()} It was not restarted; see Logs.", "error")

    def _on_finished(self, outcome) -> None:
        if outcome.ok and outcome.was_requested_stop:
            self.notify("Node stopped", outcome.describe())

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()
