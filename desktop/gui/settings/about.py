"""About: versions (what a bug report needs) and where data and logs live, with open buttons."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Callable

import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop import __version__
from desktop.gui.context import AppContext

from .base import SettingsPage


def open_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)  # a fresh install may not have logs yet
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class AboutPage(SettingsPage):
    title = "About"
    icon_name = "help-about"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 opener: Callable[[Path], None] = open_folder):
        super().__init__(ctx, parent)
        self.opener = opener
        form = self.add_form()
        self.versions = {
            "RL Swarm Desktop": __version__,
            "Python": f"{platform.python_version()} ({sys.platform})",
            "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
        }
        for name, value in self.versions.items():
            form.addRow(name, self._selectable(value))
        self.folders = {"Data": ctx.paths.data, "Logs": ctx.paths.logs, "Config": ctx.paths.config}
        self.open_buttons: dict[str, QPushButton] = {}
        for name, path in self.folders.items():
            row = QHBoxLayout()
            row.addWidget(self._selectable(str(path)), 1)
            button = QPushButton("Open folder")
            button.clicked.connect(lambda _=False, p=path: self.opener(p))
            row.addWidget(button)
            self.open_buttons[name] = button
            form.addRow(name, row)
        self.finish()

    @staticmethod
    def _selectable(text: str) -> QLabel:
        label = QLabel(text)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def version_text(self) -> str:
        """One line per version, for "copy to a bug report"."""
        return "\n".join(f"{k}: {v}" for k, v in self.versions.items())
