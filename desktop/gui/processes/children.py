"""The app's two child processes: the node (its status folded from its events) and the local
services (ready once their first line says where they listen). Both are ProcessSupervisors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Signal

from desktop.events.history import read_history
from desktop.events.status import NodeStatus
from desktop.gui.processes.supervisor import ProcessSupervisor, ProcState


# ---- the node ------------------------------------------------------------------------------------
class NodeSupervisor(ProcessSupervisor):
    """The node process, plus the node's latest status as read from its events."""

    status_changed = Signal(object)  # NodeStatus (a snapshot)
    running_on_spawn = False  # RUNNING once node_started says the model is loaded

    def __init__(self, argv_factory: Callable[[], list[str]], history: Path | None = None, **kwargs) -> None:
        super().__init__("node", argv_factory, **kwargs)
        self.status = NodeStatus()
        if history is not None:  # the rounds this peer played before the app was launched
            self.status.load_history(read_history(history))
        self.state_changed.connect(self._on_state)

    def _on_run_start(self) -> None:
        self.status.new_run()

    def _last_round(self) -> int | None:
        return self.status.last_completed

    def _on_state(self, state: ProcState) -> None:
        if state is not ProcState.RUNNING:  # RUNNING's text comes from the events
            self.status.state = {ProcState.STARTING: "loading model"}.get(state, state.value)
            self.status_changed.emit(self.status.snapshot())

    def _on_event(self, ev: dict) -> None:
        # The first sign of play (trainers and proposers both send node_started); every event comes after
        # the node installed its signal handlers, so SIGUSR1 is safe from here on.
        if ev["type"] in ("node_started", "round_started", "proposer") and self._state is ProcState.STARTING:
            self._set_state(ProcState.RUNNING)
        if self.status.apply(ev):
            self.status_changed.emit(self.status.snapshot())


# ---- the local services --------------------------------------------------------------------------
@dataclass(frozen=True)
class ServicesEndpoints:
    """Where the services listen, as their first stdout line (``ServicesInfo.public()``) says."""

    rpc_url: str
    contract: str
    login_url: str
    api_token_file: str


class ServicesSupervisor(ProcessSupervisor):
    """`rl-swarm services --json`: RUNNING once its ``services_ready`` event says where everything listens."""

    ready = Signal(object)  # ServicesEndpoints
    hosting = Signal(dict)  # the `hosting` event: where other machines reach this swarm, or why not
    running_on_spawn = False

    def __init__(self, argv_factory: Callable[[], list[str]], **kwargs) -> None:
        super().__init__("local services", argv_factory, **kwargs)
        self.info: ServicesEndpoints | None = None

    def _on_run_start(self) -> None:
        self.info = None

    def _on_event(self, ev: dict) -> None:
        if ev["type"] == "hosting":
            self.hosting.emit(ev)
        if ev["type"] != "services_ready" or self.info is not None:
            return
        info = ServicesEndpoints(**{k: ev[k] for k in ("rpc_url", "contract", "login_url", "api_token_file")})
        self.info = info
        if self._state is ProcState.STARTING:
            self._set_state(ProcState.RUNNING)
        self.ready.emit(info)
