"""Where the node and the services run: on this computer, or inside WSL2 when the app is on
Windows (hivemind has no Windows build, so the node there is the Linux bundle in an `RLSwarm`
distro). Every child command the app starts is built here, so the rest of the app never knows.

    Native   `rl-swarm ARGS` (the bundle's executable, or `python -m desktop.cli` from a checkout)
    Wsl      `wsl.exe -d RLSwarm --exec /opt/rl-swarm-desktop/rl-swarm-desktop ARGS`, with every
             path argument translated as `wslpath` would, events read from the same stdout pipe,
             and stops sent as lines on stdin (`--control-stdin`): Windows signals do not cross.

Standard library only (the GUI builds these commands).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import PurePath

from desktop.utils.frozen import self_command

WSL_DISTRO = "RLSwarm"
WSL_EXECUTABLE = "/opt/rl-swarm-desktop/rl-swarm-desktop"  # where installer/windows puts the Linux bundle
ENV_WSL = "RL_SWARM_WSL"  # a wsl.exe to use (any OS): forces the WSL runtime, e.g. a test's stand-in

_DRIVE = re.compile(r"^([A-Za-z]):[\\/]*(.*)$")
_WSL_SHARE = re.compile(r"^[\\/]{2}wsl(?:\$|\.localhost)[\\/]+[^\\/]+[\\/]*(.*)$", re.IGNORECASE)


def windows_to_wsl(path: str, mount_root: str = "/mnt") -> str:
    r"""A Windows path as the distro sees it: ``C:\Users\Ada\x`` -> ``/mnt/c/Users/Ada/x``;
    ``\\wsl$\RLSwarm\opt\x`` (or ``\\wsl.localhost\…``) -> ``/opt/x``; a POSIX path stays as is."""
    if (share := _WSL_SHARE.match(path)) is not None:
        return "/" + share.group(1).replace("\\", "/")
    if (drive := _DRIVE.match(path)) is not None:
        rest = drive.group(2).replace("\\", "/")
        return f"{mount_root.rstrip('/')}/{drive.group(1).lower()}" + (f"/{rest}" if rest else "")
    if path.startswith("\\\\"):
        raise ValueError(f"{path}: a network share is not visible inside WSL; keep the data on a local drive")
    return path.replace("\\", "/") if "\\" in path and "/" not in path else path


@dataclass(frozen=True)
class Native:
    """Children run on this computer and hear signals (on POSIX)."""

    signals_reach_children: bool = os.name == "posix"

    def command(self, *args: str | PurePath) -> list[str]:
        return self_command(*(str(a) for a in args))


@dataclass(frozen=True)
class Wsl:
    """Children run inside a WSL2 distro; path arguments (``PurePath``) are translated."""

    wsl: str = "wsl.exe"
    distro: str = WSL_DISTRO
    executable: str = WSL_EXECUTABLE
    mount_root: str = "/mnt"
    signals_reach_children: bool = False  # a Windows process cannot send SIGTERM into the distro

    def path(self, path: str | PurePath) -> str:
        return windows_to_wsl(str(path), self.mount_root)

    def command(self, *args: str | PurePath) -> list[str]:
        inner = [self.path(a) if isinstance(a, PurePath) else a for a in args]
        return [self.wsl, "-d", self.distro, "--exec", self.executable, *inner]


def current() -> Native | Wsl:
    """The runtime for this computer: WSL on Windows (or when RL_SWARM_WSL names a wsl.exe)."""
    override = os.environ.get(ENV_WSL)
    if override:
        return Wsl(wsl=override)
    if sys.platform == "win32":
        return Wsl()
    return Native()
