"""How long since the user last touched the computer, and whether it runs on battery.

Each OS says it its own way: X11's screen-saver extension (libXss), logind's IdleHint (Wayland
desktops set it), macOS's HIDIdleTime (ioreg), Windows' GetLastInputInfo. Where none answers the
result is None, "unknown": the policy then never pauses for idleness, and says why. Light: no Qt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable

import psutil


def on_battery() -> bool | None:
    """True on battery, False on mains, None with no battery to read."""
    try:
        battery = psutil.sensors_battery()
    except Exception:
        return None
    if battery is None or battery.power_plugged is None:
        return None
    return not battery.power_plugged


# --- X11 -------------------------------------------------------------------------------------

class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [("window", ctypes.c_ulong), ("state", ctypes.c_int), ("kind", ctypes.c_int),
                ("til_or_since", ctypes.c_ulong), ("idle", ctypes.c_ulong), ("event_mask", ctypes.c_ulong)]


def _load_x11():
    names = [ctypes.util.find_library("X11") or "libX11.so.6", ctypes.util.find_library("Xss") or "libXss.so.1"]
    x11, xss = (ctypes.CDLL(n) for n in names)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XFree.argtypes = [ctypes.c_void_p]
    xss.XScreenSaverQueryExtension.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                               ctypes.POINTER(ctypes.c_int)]
    xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
    xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo)]
    return x11, xss


def x11_idle(display: str | None = None) -> float | None:
    """Seconds idle on an X display (default $DISPLAY), or None. The display is opened per call:
    a connection kept open would take the whole process down with it if the X server went away
    (Xlib's I/O error handler exits). (A desktop always has other clients; a bare Xvfb without
    -noreset restarts when its last one leaves, which zeroes the idle time.)"""
    display = display or os.environ.get("DISPLAY")
    if not display:
        return None
    try:
        x11, xss = _load_x11()
    except OSError:
        return None
    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        return None
    try:
        event, error = ctypes.c_int(), ctypes.c_int()
        if not xss.XScreenSaverQueryExtension(dpy, ctypes.byref(event), ctypes.byref(error)):
            return None
        info = xss.XScreenSaverAllocInfo()
        if not info:
            return None
        try:
            if not xss.XScreenSaverQueryInfo(dpy, x11.XDefaultRootWindow(dpy), info):
                return None
            return info.contents.idle / 1000.0
        finally:
            x11.XFree(info)
    finally:
        x11.XCloseDisplay(dpy)


# --- logind, macOS, Windows ------------------------------------------------------------------

def _run(args: list[str]) -> str | None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def logind_idle() -> float | None:
    if not shutil.which("loginctl"):
        return None
    session = os.environ.get("XDG_SESSION_ID") or "auto"
    out = _run(["loginctl", "show-session", session, "-p", "IdleHint", "-p", "IdleSinceHintMonotonic"])
    if not out:
        return None
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if fields.get("IdleHint") == "no":
        return 0.0
    since = fields.get("IdleSinceHintMonotonic", "")
    if fields.get("IdleHint") != "yes" or not since.isdigit() or int(since) == 0:
        return None
    return max(0.0, time.monotonic() - int(since) / 1e6)


def macos_idle() -> float | None:
    out = _run(["ioreg", "-c", "IOHIDSystem", "-d", "4"])
    found = re.search(r'"HIDIdleTime"\s*=\s*(\d+)', out or "")
    return int(found.group(1)) / 1e9 if found else None


def windows_idle() -> float | None:
    class LastInput(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint), ("time", ctypes.c_uint)]

    try:
        user32, kernel32 = ctypes.windll.user32, ctypes.windll.kernel32  # type: ignore[attr-defined]
        info = LastInput(ctypes.sizeof(LastInput), 0)
        if not user32.GetLastInputInfo(ctypes.byref(info)):
            return None
        return ((kernel32.GetTickCount() - info.time) & 0xFFFFFFFF) / 1000.0
    except (AttributeError, OSError):
        return None


def probes() -> list[tuple[str, Callable[[], float | None]]]:
    """The ways to ask, in the order worth trying on this OS and session."""
    if sys.platform == "win32":
        return [("GetLastInputInfo", windows_idle)]
    if sys.platform == "darwin":
        return [("ioreg HIDIdleTime", macos_idle)]
    x11, logind = ("X11 screen saver", x11_idle), ("logind IdleHint", logind_idle)
    # under Wayland the X server (XWayland) only sees X clients' input: ask logind first
    return [logind, x11] if os.environ.get("WAYLAND_DISPLAY") else [x11, logind]


class IdleProbe:
    """Remembers which way answered, so the governor's ticks cost one query."""

    def __init__(self, candidates: list[tuple[str, Callable[[], float | None]]] | None = None) -> None:
        self.candidates = candidates if candidates is not None else probes()
        self.source: str | None = None

    def idle_seconds(self) -> float | None:
        ordered = sorted(self.candidates, key=lambda c: c[0] != self.source)
        for name, probe in ordered:
            try:
                value = probe()
            except Exception:
                value = None
            if value is not None:
                self.source = name
                return value
        self.source = None
        return None
