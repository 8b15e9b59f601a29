"""How each process state reads and looks: one table for the dashboard's pill, the tray and the
status bar, so the three never disagree on what a state is called."""

from __future__ import annotations

from dataclasses import dataclass

from desktop.gui.processes.supervisor import ProcState


@dataclass(frozen=True)
class StateLook:
    label: str   # the dashboard's pill
    tone: str    # the pill's palette role
    icon: str    # the tray icon
    status: str  # the window's status bar and the tray's tooltip


LOOKS = {
    ProcState.STOPPED: StateLook("Stopped", "muted", "tray-paused", "Node stopped"),
    ProcState.STARTING: StateLook("Starting", "warn", "tray-starting", "Node starting…"),
    ProcState.RUNNING: StateLook("Running", "ok", "tray-running", "Node running"),
    ProcState.STOPPING: StateLook("Stopping", "warn", "tray-starting", "Node stopping…"),
    ProcState.CRASHED: StateLook("Crashed", "error", "tray-error", "Node crashed — see Logs"),
}


def look(state: ProcState) -> StateLook:
    return LOOKS[state]
