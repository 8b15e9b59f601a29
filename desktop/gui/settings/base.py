"""The contract every settings page follows, so the settings window can treat them alike.

A page reads its values from disk in ``load()``, writes them in ``save()`` and refuses bad input
in ``validate()`` before anything is written: the window validates every page first, so a bad
value on one page never leaves the others half saved.
"""

from __future__ import annotations

from pydantic import ValidationError
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from desktop.gui.context import AppContext


class SettingsPage(QWidget):
    title: str = ""
    icon_name: str = ""  # a freedesktop theme icon name; the list falls back to text only

    def __init__(self, ctx: AppContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self._layout = QVBoxLayout(self)
        heading = QLabel(f"<h2>{self.title}</h2>")
        self._layout.addWidget(heading)

    # ---- helpers for subclasses ----
    def add_form(self) -> QFormLayout:
        form = QFormLayout()
        self._layout.addLayout(form)
        return form

    def add_note(self, text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setStyleSheet("color: palette(mid);")
        self._layout.addWidget(label)
        return label

    def finish(self) -> None:
        """Push the content to the top (call at the end of a subclass's __init__)."""
        self._layout.addStretch(1)

    # ---- the contract ----
    def load(self) -> None:
        """Show the stored values (also used by Revert)."""

    def save(self) -> None:
        """Store the shown values. Only called after validate() returned None."""

    def validate(self) -> str | None:
        """A message for the user if the shown values cannot be saved, else None."""
        return None


class ConfigPage(SettingsPage):
    """A page that edits sections of config.yaml: ``_apply(cfg)`` writes the shown values into a
    config (raising ValueError or pydantic's ValidationError on bad input); checking and saving
    are the same for every such page."""

    def _apply(self, cfg):
        raise NotImplementedError

    def validate(self) -> str | None:
        try:
            self._apply(self.ctx.load_config())
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or exc.title
            return f"{exc.title.replace('Config', '').lower() or 'node'} {field}: {err['msg']}"
        except ValueError as exc:
            return str(exc)
        return None

    def save(self) -> None:
        # Load fresh: other pages (Hugging Face) write other sections of the same file.
        self.ctx.save_config(self._apply(self.ctx.load_config()))
