"""General: start the app at login, and whether closing the window keeps it in the tray.

Both are app (not node) settings, kept in the GUI's QSettings ini. "Start at login" is also the
platform's own autostart entry, and that entry is the truth: a user who deletes it by hand sees
the box unticked next time.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QWidget

from desktop.utils.frozen import self_command
from desktop.gui.context import AppContext

from .base import SettingsPage

APP_ID = "rl-swarm-desktop"
APP_TITLE = "RL Swarm Desktop"
MAC_LABEL = "org.rlswarm.desktop"
WIN_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
KEY_CLOSE_TO_TRAY = "general/close_to_tray"
KEY_START_AT_LOGIN = "general/start_at_login"


def gui_settings(ctx: AppContext) -> QSettings:
    path = ctx.gui_settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def close_to_tray(ctx: AppContext) -> bool:
    """What the main window asks when the user closes it (default: keep running in the tray)."""
    return bool(gui_settings(ctx).value(KEY_CLOSE_TO_TRAY, True, type=bool))


# ---- the platform's autostart entry ------------------------------------------------------

def _platform(platform: str | None) -> str:
    p = platform or sys.platform
    return "linux" if p.startswith("linux") or "bsd" in p else p


def autostart_path(platform: str | None = None) -> Path | None:
    """Where our entry lives (None on Windows, where it is a registry value)."""
    p = _platform(platform)
    if p == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{MAC_LABEL}.plist"
    if p == "win32":
        return None
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / f"{APP_ID}.desktop"


def _desktop_exec(command: list[str]) -> str:
    # Desktop Entry spec: quote args with reserved characters, escape " ` $ \ inside, and % as %%.
    out = []
    for arg in command:
        arg = arg.replace("%", "%%")
        if any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        out.append(arg)
    return " ".join(out)


def autostart_enabled(platform: str | None = None) -> bool:
    p = _platform(platform)
    if p == "win32":
        try:
            import winreg  # Windows only

            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WIN_RUN_KEY) as key:
                winreg.QueryValueEx(key, APP_TITLE)
            return True
        except OSError:
            return False
    path = autostart_path(p)
    if not path.is_file():
        return False
    if p == "linux":  # a desktop may disable an entry with Hidden=true instead of deleting it
        text = path.read_text(encoding="utf-8", errors="replace")
        return "\nHidden=true" not in text and "X-GNOME-Autostart-enabled=false" not in text
    return True


def set_autostart(enabled: bool, command: list[str], platform: str | None = None) -> None:
    """Create or remove our autostart entry; raises OSError if the platform refuses."""
    p = _platform(platform)
    if p == "win32":
        import winreg  # Windows only

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WIN_RUN_KEY) as key:
            if enabled:
                winreg.SetValueEx(key, APP_TITLE, 0, winreg.REG_SZ, subprocess.list2cmdline(command))
            else:
                try:
                    winreg.DeleteValue(key, APP_TITLE)
                except FileNotFoundError:
                    pass
        return
    path = autostart_path(p)
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if p == "darwin":
        data = plistlib.dumps({"Label": MAC_LABEL, "ProgramArguments": list(command),
                               "RunAtLoad": True, "ProcessType": "Interactive"})
    else:
        data = ("[Desktop Entry]\nType=Application\n"
                f"Name={APP_TITLE}\nComment=Train with the swarm in the background\n"
                f"Exec={_desktop_exec(command)}\nTerminal=false\n"
                "X-GNOME-Autostart-enabled=true\n").encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# ---- the page ----------------------------------------------------------------------------

class GeneralPage(SettingsPage):
    title = "General"
    icon_name = "preferences-system"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 autostart_command: list[str] | None = None):
        super().__init__(ctx, parent)
        # What autostart runs: the app itself, on the same data dir as now.
        self.autostart_command = autostart_command or self_command("gui", *ctx.data_dir_arg)
        self.start_at_login = QCheckBox("Start RL Swarm Desktop when I log in")
        self.close_to_tray = QCheckBox("Closing the window keeps the node running in the tray")
        self._layout.addWidget(self.start_at_login)
        self._layout.addWidget(self.close_to_tray)
        self.add_note("Without a system tray (some Linux desktops) closing the window quits.")
        self.finish()

    def load(self) -> None:
        self.start_at_login.setChecked(autostart_enabled())
        self.close_to_tray.setChecked(close_to_tray(self.ctx))

    def save(self) -> None:
        settings = gui_settings(self.ctx)
        settings.setValue(KEY_CLOSE_TO_TRAY, self.close_to_tray.isChecked())
        settings.setValue(KEY_START_AT_LOGIN, self.start_at_login.isChecked())
        settings.sync()
        # Rewritten every time: the app may have moved since the entry was made.
        set_autostart(self.start_at_login.isChecked(), self.autostart_command)
