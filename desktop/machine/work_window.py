"""When the node may work: one pure decision from (settings, inputs, clock).

Light on purpose (no torch, no Qt): the node's governor, the app's tray and the tests all call
``decide``. The inputs are measured elsewhere (``desktop.machine.idle``, the memory watchdog, the user's
pause in ``desktop.machine.pause_control``); a measurement that is unknown here is None, and an unknown
input never pauses the node (``notes`` says what could not be known, so the user is told).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time as day_time, timedelta

# why a node is paused, most binding first: the user's word beats every automatic reason
REASONS = ("user", "memory", "battery", "schedule", "idle")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Inputs:
    idle_s: float | None = None        # seconds since the user last touched keyboard or mouse
    on_battery: bool | None = None     # None: no battery, or none we can read
    user: str | None = None            # the user's pause: "now" or "after-round"
    user_until: float | None = None    # ... until this time (epoch s); None: until resumed
    memory_low: bool = False           # the watchdog's verdict (desktop.node.pause)
    memory_detail: str = ""


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str | None = None          # one of REASONS when paused
    when: str = "now"                  # "now" (next safe point) or "after-round"
    detail: str = ""                   # for people: why, and until when
    notes: tuple[str, ...] = ()        # settings that could not be honoured here (unknown inputs)


def parse_hhmm(text: str) -> day_time:
    """'HH:MM' (24 h) as a time; ValueError for anything else."""
    hours, sep, minutes = str(text).partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a time of day as HH:MM")
    return day_time(int(hours), int(minutes))  # raises for 24:00, 12:60


def in_schedule(run_from: str, run_until: str, days, now: datetime) -> bool:
    """Inside the weekly window? ``run_from == run_until`` is the whole day; a window that ends
    before it starts runs past midnight and belongs to the day it started on."""
    start, end = parse_hhmm(run_from), parse_hhmm(run_until)
    clock = now.time()
    today = DAYS[now.weekday()]
    yesterday = DAYS[(now - timedelta(days=1)).weekday()]
    if start == end:
        return today in days
    if start < end:
        return today in days and start <= clock < end
    return (today in days and clock >= start) or (yesterday in days and clock < end)


def decide(settings, inputs: Inputs, now: datetime) -> Decision:
    """``settings``: a ``config.ResourcesConfig`` (anything with its attributes)."""
    notes = []
    if settings.only_when_idle and inputs.idle_s is None:
        notes.append("'only when idle' is on, but this computer does not tell how long it has been idle")
    notes = tuple(notes)
    stamp = now.timestamp()
    if inputs.user and (inputs.user_until is None or stamp < inputs.user_until):
        until = (f" until {datetime.fromtimestamp(inputs.user_until).strftime('%a %H:%M')}"
                 if inputs.user_until is not None else "")
        return Decision(False, "user", inputs.user, f"paused by you{until}", notes)
    if inputs.memory_low:
        return Decision(False, "memory", "now", inputs.memory_detail or "memory is short", notes)
    if settings.pause_on_battery and inputs.on_battery:
        return Decision(False, "battery", "now", "on battery power", notes)
    if settings.schedule and not in_schedule(settings.run_from, settings.run_until, settings.run_days, now):
        return Decision(False, "schedule", "now",
                        f"outside the schedule ({settings.run_from}-{settings.run_until})", notes)
    if settings.only_when_idle and inputs.idle_s is not None and inputs.idle_s < settings.idle_minutes * 60:
        return Decision(False, "idle", "now",
                        f"the computer is in use (runs after {settings.idle_minutes} min without input)", notes)
    return Decision(True, notes=notes)
