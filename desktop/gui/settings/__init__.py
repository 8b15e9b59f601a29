"""The settings window's content: a list of pages on the left, the chosen page on the right.

Each page is one module with load()/save()/validate() (see :mod:`.base`). Save checks every page
before writing any, so one bad value never leaves settings half saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QStackedWidget, QVBoxLayout, QWidget)

from desktop.gui.context import AppContext

from .about import AboutPage
from .account import AccountPage
from .base import SettingsPage
from .general import GeneralPage
from .huggingface import HuggingFacePage
from .identity import IdentityPage
from .node import NodePage
from .resources import ResourcesPage

P = TypeVar("P", bound=SettingsPage)

__all__ = ["AboutPage", "AccountPage", "GeneralPage", "HuggingFacePage", "IdentityPage",
           "NodePage", "ResourcesPage", "SettingsPage", "SettingsWidget"]


class SettingsWidget(QWidget):
    saved = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 on_logout: Callable[[], None] | None = None,
                 login_status_url: str | None = None,
                 confirm: Callable[[str], bool] | None = None,
                 ask_passphrase: Callable[[str], str | None] | None = None,
                 autostart_command: list[str] | None = None,
                 open_folder: Callable[[Path], None] | None = None):
        super().__init__(parent)
        self.ctx = ctx
        about_kw = {"opener": open_folder} if open_folder else {}
        self.pages: list[SettingsPage] = [
            GeneralPage(ctx, autostart_command=autostart_command),
            NodePage(ctx),
            ResourcesPage(ctx),
            IdentityPage(ctx, confirm=confirm, ask_passphrase=ask_passphrase),
            AccountPage(ctx, on_logout=on_logout, status_url=login_status_url),
            HuggingFacePage(ctx),
            AboutPage(ctx, **about_kw),
        ]
        self.list = QListWidget()
        self.list.setMaximumWidth(180)
        self.stack = QStackedWidget()
        for page in self.pages:
            icon = QIcon.fromTheme(page.icon_name) if page.icon_name else QIcon()
            self.list.addItem(QListWidgetItem(icon, page.title))
            self.stack.addWidget(page)
        self.list.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.list.setCurrentRow(0)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.revert_button = QPushButton("Revert")
        self.save_button = QPushButton("Save")
        self.save_button.setDefault(True)
        self.revert_button.clicked.connect(self.load)
        self.save_button.clicked.connect(self.save)

        body = QHBoxLayout()
        body.addWidget(self.list)
        body.addWidget(self.stack, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addLayout(buttons)
        self.load()

    def page(self, kind: type[P]) -> P:
        return next(p for p in self.pages if isinstance(p, kind))

    def show_page(self, kind: type[SettingsPage]) -> None:
        self.list.setCurrentRow(self.pages.index(self.page(kind)))

    def load(self) -> None:
        for page in self.pages:
            page.load()
        error = self.ctx.config_error
        self.message.setText(f"{self.ctx.config_file_name()} has errors; the defaults are shown and nothing "
                             f"will be saved until it is fixed:\n{error}" if error else "")

    def save(self) -> bool:
        """Validate every page, then save them all. False (and a message) if anything failed."""
        self.ctx.load_config()
        if self.ctx.config_error:  # never write over a file we could not read
            self.show_page(NodePage)
            self.message.setText(f"Not saved: {self.ctx.config_file_name()} has errors. Fix or remove it, "
                                 f"then save again.\n{self.ctx.config_error}")
            return False
        for page in self.pages:
            error = page.validate()
            if error:
                self.show_page(type(page))
                self.message.setText(f"{page.title}: {error}")
                return False
        for page in self.pages:
            try:
                page.save()
            except Exception as exc:  # a disk or registry refusal: say so, keep the window open
                self.show_page(type(page))
                self.message.setText(f"{page.title}: could not save ({exc}).")
                return False
        self.message.setText("Saved. Node settings apply the next time it starts.")
        self.saved.emit()
        return True
