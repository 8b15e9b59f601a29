"""Pausing a running node: the gate its loop waits at, and the governor that opens and shuts it.

The governor (a thread) looks every ``tick`` seconds at the user's pause (control.json), the
idle time, the battery and the memory watchdog, asks ``desktop.machine.work_window.decide`` and hands the
verdict to the gate. The node's loop passes the gate at its safe points: between rounds, before
each stage, between generated tokens and before a training step. A pause "after-round" only
holds between rounds; a pause for memory abandons the round in progress (``RoundAbandoned``) so
its activations are freed, instead of waiting with them. While paused the node keeps its DHT
daemon and its submission queue, and re-announces itself so peers keep it on their roster.
Light: no torch (the memory watch frees torch's caches only if torch is already loaded).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import psutil

from desktop.config import ConfigError, load_config
from desktop.machine import pause_control
from desktop.machine.idle import IdleProbe, on_battery
from desktop.machine.work_window import Decision, Inputs, decide


log = logging.getLogger(__name__)

KEEP_ALIVE_S = 60.0  # re-announce on the roster this often while paused (its entries live 300 s)


class RoundAbandoned(Exception):
    """The round in progress is given up (memory is short); nothing of it is kept or submitted."""


class PauseGate:
    def __init__(self, sink, stop: threading.Event, keep_alive: Callable[[int], None] | None = None,
                 poll: float = 0.25) -> None:
        self.sink = sink
        self.stop = stop
        self.keep_alive = keep_alive
        self.poll = poll
        self.refresh: Callable[[], object] | None = None  # a fresh decision, asked between rounds
        self._decision = Decision(True)
        self._changed = threading.Condition()

    def set(self, decision: Decision) -> None:
        with self._changed:
            self._decision = decision
            self._changed.notify_all()

    def holds(self, at: str) -> bool:
        """Would the node wait here? ``at``: "round" (between rounds) or "step" (inside one)."""
        d = self._decision
        return not d.run and (d.when == "now" or at == "round")

    def wait(self, round_number: int, at: str = "step") -> None:
        """Return when the node may go on (or is asked to stop: the caller checks). At a "step"
        under a memory pause, raise RoundAbandoned instead of waiting inside the round. Between
        rounds the governor is asked again first: a round can be shorter than its tick."""
        if at == "round" and self.refresh is not None:
            try:
                self.refresh()
            except Exception:
                log.exception("resource check failed")
        if not self.holds(at):
            return
        if at == "step" and self._decision.reason == "memory":
            raise RoundAbandoned(self._decision.detail)
        started = time.monotonic()
        shown = None
        last_alive = started
        while self.holds(at) and not self.stop.is_set():
            d = self._decision
            if (d.reason, d.detail) != shown:  # a new reason while paused is news too
                shown = (d.reason, d.detail)
                log.info("paused (%s): %s", d.reason, d.detail)
                self.sink.emit("paused", round=round_number, reason=d.reason or "user", when=d.when,
                               detail=d.detail)
            if self.keep_alive and time.monotonic() - last_alive >= KEEP_ALIVE_S:
                last_alive = time.monotonic()
                try:
                    self.keep_alive(round_number)
                except Exception as exc:  # presence is a courtesy; never a reason to stop
                    log.debug("keep-alive failed: %s", exc)
            with self._changed:
                self._changed.wait(self.poll)
        if shown is not None and not self.stop.is_set():
            seconds = round(time.monotonic() - started, 3)
            log.info("resumed after %.0f s (%s)", seconds, shown[0])
            self.sink.emit("resumed", round=round_number, reason=shown[0] or "user", seconds=seconds)


class MemoryWatch:
    """Short of memory? The node's own RSS against ``limit_mb``, and the system's available
    memory against ``min_free_percent``; with some slack before it clears, so a node near the
    line does not flap between paused and running."""

    def __init__(self, limit_mb: int | None, min_free_percent: float, read=None) -> None:
        self.limit_mb = limit_mb
        self.min_free_percent = min_free_percent
        self._read = read or _read_memory
        self.low = False
        self.detail = ""

    def check(self) -> bool:
        rss_mb, available_mb, total_mb = self._read()
        free_pct = 100.0 * available_mb / max(1.0, total_mb)
        slack = 0.9 if self.low else 1.0  # clear below 90 % of the cap / 1.5x the free floor
        over_cap = self.limit_mb is not None and rss_mb > self.limit_mb * slack
        short = free_pct < self.min_free_percent * (1.5 if self.low else 1.0)
        was = self.low
        self.low = over_cap or short
        if over_cap:
            self.detail = f"the node uses {rss_mb:.0f} MB, over its limit of {self.limit_mb} MB"
        elif short:
            self.detail = (f"only {available_mb:.0f} MB ({free_pct:.1f} %) of memory is free; "
                           f"the node pauses below {self.min_free_percent:g} %")
        if self.low and not was:
            _free_caches()
        return self.low


def _read_memory() -> tuple[float, float, float]:
    vm = psutil.virtual_memory()
    return psutil.Process().memory_info().rss / 2**20, vm.available / 2**20, vm.total / 2**20


def _free_caches() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # only if the node loaded it: never import it here
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class Governor:
    """Decides every ``tick`` seconds and tells the gate; a daemon thread, stopped with the node."""

    def __init__(self, settings, gate: PauseGate, control_file: str | Path, *, idle=None,
                 battery: Callable[[], bool | None] | None = None, memory: MemoryWatch | None = None,
                 config_file: str | Path | None = None, tick: float = 2.0,
                 clock: Callable[[], datetime] = datetime.now) -> None:
        self.settings = settings
        self.gate = gate
        self.control_file = Path(control_file)
        self.idle = idle
        self.battery = battery or on_battery
        self.memory = memory or MemoryWatch(settings.memory_limit_mb, settings.min_free_percent)
        # the app's Resources page saves config.yaml: its `resources:` apply without a restart
        self.config_file = Path(config_file) if config_file else None
        self._config_mtime = self._mtime()
        self.tick = tick
        self.clock = clock
        self._told: set[str] = set()
        self._lock = threading.Lock()  # its thread and the node's loop (between rounds) both step
        self._thread: threading.Thread | None = None
        gate.refresh = self.step

    def _mtime(self) -> float | None:
        try:
            return self.config_file.stat().st_mtime if self.config_file else None
        except OSError:
            return None

    def _reload(self) -> None:
        mtime = self._mtime()
        if mtime is None or mtime == self._config_mtime:
            return
        self._config_mtime = mtime

        try:
            self.settings = load_config(self.config_file).resources
        except ConfigError as exc:  # the node keeps the settings it has; the next save may fix it
            self.gate.sink.emit("warning", message=f"resource settings not applied: {exc}")
            return
        self.memory.limit_mb, self.memory.min_free_percent = (self.settings.memory_limit_mb,
                                                              self.settings.min_free_percent)
        log.info("resource settings reloaded from %s", self.config_file)

    def inputs(self) -> Inputs:
        s = self.settings
        if s.only_when_idle and self.idle is None:
            self.idle = IdleProbe()
        user = pause_control.read(self.control_file)
        low = self.memory.check()
        return Inputs(idle_s=self.idle.idle_seconds() if s.only_when_idle and self.idle is not None else None,
                      on_battery=self.battery() if s.pause_on_battery else None, user=user.when,
                      user_until=user.until, memory_low=low, memory_detail=self.memory.detail)

    def step(self) -> Decision:
        with self._lock:
            self._reload()
            decision = decide(self.settings, self.inputs(), self.clock())
            for note in decision.notes:  # once each: an unknown input is said, never guessed
                if note not in self._told:
                    self._told.add(note)
                    self.gate.sink.emit("warning", message=note)
            self.gate.set(decision)
            return decision

    def start(self) -> "Governor":
        self.step()  # decided before the first round: a node started paused never begins one

        def run() -> None:
            while not self.gate.stop.wait(self.tick):
                try:
                    self.step()
                except Exception:  # a probe that breaks must not stop the node or its pauses
                    log.exception("resource check failed")

        self._thread = threading.Thread(target=run, name="governor", daemon=True)
        self._thread.start()
        return self
