"""Resources: how hard and when the node works (config `resources:`), applied within seconds.

The node's governor re-reads this section whenever config.yaml changes, so saving here takes
effect on a running node without a restart. The page says whether this computer can tell how
long it has been idle, rather than offering a setting that would silently do nothing.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QTime
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QTimeEdit, QWidget

from desktop.config import Config, ResourcesConfig, field_bounds
from desktop.gui.context import AppContext
from desktop.machine.idle import IdleProbe
from desktop.machine.work_window import DAYS

from .base import ConfigPage


def idle_source() -> str | None:
    """Which way this computer reports idle time, or None (asked once, when the page opens)."""

    probe = IdleProbe()
    return probe.source if probe.idle_seconds() is not None else None


class ResourcesPage(ConfigPage):
    title = "Resources"
    icon_name = "preferences-system-performance"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, idle_source=idle_source):
        super().__init__(ctx, parent)
        form = self.add_form()
        cores = os.cpu_count() or 1
        self.threads = QSpinBox()
        self.threads.setRange(0, cores)
        self.threads.setSpecialValueText(f"All cores ({cores})")
        form.addRow("CPU threads", self.threads)

        self.only_idle = QCheckBox("Only when the computer is not in use")
        self.idle_minutes = QDoubleSpinBox()
        self.idle_minutes.setDecimals(1)
        self.idle_minutes.setRange(*field_bounds(ResourcesConfig, "idle_minutes"))
        self.idle_minutes.setSuffix(" min without input")
        self.only_idle.toggled.connect(self.idle_minutes.setEnabled)
        form.addRow(self.only_idle)
        form.addRow("Start after", self.idle_minutes)
        source = idle_source()
        self.idle_note = QLabel(
            f"This computer reports idle time ({source})." if source else
            "This computer does not report how long it has been idle, so this setting cannot pause "
            "the node here (it will keep running).")
        self.idle_note.setWordWrap(True)
        self.idle_note.setStyleSheet("color: palette(mid);")
        form.addRow(self.idle_note)

        self.battery = QCheckBox("Pause on battery power")
        form2 = form  # one form: the labels line up
        form2.addRow(self.battery)

        self.schedule = QCheckBox("Run only during these hours")
        self.run_from, self.run_until = QTimeEdit(), QTimeEdit()
        for edit in (self.run_from, self.run_until):
            edit.setDisplayFormat("HH:mm")
        hours = QHBoxLayout()
        hours.addWidget(self.run_from)
        hours.addWidget(self.run_until)
        self.days = {day: QCheckBox(day.capitalize()) for day in DAYS}
        days = QHBoxLayout()
        for box in self.days.values():
            days.addWidget(box)
        self.schedule.toggled.connect(self._schedule_toggled)
        form2.addRow(self.schedule)
        form2.addRow("From / until", hours)
        form2.addRow("On", days)

        self.memory_limit = QSpinBox()
        self.memory_limit.setRange(0, 1_048_576)
        self.memory_limit.setSingleStep(512)
        self.memory_limit.setSuffix(" MB")
        self.memory_limit.setSpecialValueText("No limit")
        self.min_free = QDoubleSpinBox()
        self.min_free.setDecimals(1)
        self.min_free.setRange(*field_bounds(ResourcesConfig, "min_free_percent"))
        self.min_free.setSuffix(" % of memory")
        form2.addRow("Node memory limit", self.memory_limit)
        form2.addRow("Keep free at least", self.min_free)
        self.add_note("A running node follows these within a few seconds. Over its memory limit, or "
                      "when the computer runs short, it gives up the round in progress and pauses "
                      "instead of being killed. Until = from: the whole day; earlier: past midnight. "
                      "CPU threads apply at the next start.")
        self.finish()

    def _schedule_toggled(self, on: bool) -> None:
        for widget in (self.run_from, self.run_until, *self.days.values()):
            widget.setEnabled(on)

    # ---- values <-> config ----
    def _apply(self, cfg: Config) -> Config:
        r = cfg.resources
        r.threads = self.threads.value() or None
        r.only_when_idle = self.only_idle.isChecked()
        r.idle_minutes = round(self.idle_minutes.value(), 1)
        r.pause_on_battery = self.battery.isChecked()
        days = [day for day, box in self.days.items() if box.isChecked()]
        if self.schedule.isChecked() and not days:
            raise ValueError("Pick at least one day for the schedule, or turn the schedule off.")
        r.schedule = self.schedule.isChecked()
        r.run_from = self.run_from.time().toString("HH:mm")
        r.run_until = self.run_until.time().toString("HH:mm")
        r.run_days = days or list(DAYS)
        limit = self.memory_limit.value()
        if 0 < limit < 256:
            raise ValueError("A node memory limit under 256 MB cannot run any model; use 0 for no limit.")
        r.memory_limit_mb = limit or None
        r.min_free_percent = round(self.min_free.value(), 1)
        return cfg

    def load(self) -> None:
        r = self.ctx.load_config().resources
        self.threads.setValue(r.threads or 0)
        self.only_idle.setChecked(r.only_when_idle)
        self.idle_minutes.setValue(r.idle_minutes)
        self.idle_minutes.setEnabled(r.only_when_idle)
        self.battery.setChecked(r.pause_on_battery)
        self.schedule.setChecked(r.schedule)
        self.run_from.setTime(QTime.fromString(r.run_from, "HH:mm"))
        self.run_until.setTime(QTime.fromString(r.run_until, "HH:mm"))
        for day, box in self.days.items():
            box.setChecked(day in r.run_days)
        self._schedule_toggled(r.schedule)
        self.memory_limit.setValue(r.memory_limit_mb or 0)
        self.min_free.setValue(r.min_free_percent)
