"""Stat cards (a title, a big value, a hint line), the coloured state pill and notice strips."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from desktop.gui import theme
from desktop.gui.shell.state_look import look
from desktop.gui.processes.supervisor import ProcState
from desktop.gui.widgets.labels import ElidedLabel


class StatCard(QFrame):
    """One number the user watches. ``tone`` colours the value: ok, warn, error or None."""

    def __init__(self, title: str, value: str = "—", hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self._tone: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(2)
        # sizes come from the stylesheet (#cardTitle, #cardValue): it would override setFont()
        self.title = QLabel(title.upper())
        self.title.setObjectName("cardTitle")
        self.value = ElidedLabel(value)  # a long model name shortens; the card never widens the page
        self.value.setObjectName("cardValue")
        self.value.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.hint = ElidedLabel(hint)
        self.hint.setObjectName("muted")
        self.hint.setTextInteractionFlags(Qt.TextSelectableByMouse)
        for label in (self.title, self.value, self.hint):
            label.setMinimumWidth(0)
            layout.addWidget(label)

    def set(self, value: str, hint: str | None = None, tone: str | None = None) -> None:
        self.value.setText(value)
        if hint is not None:
            self.hint.setText(hint)
        self._tone = tone
        self.restyle()

    def restyle(self) -> None:
        """Re-read the palette (called after a theme switch)."""
        color = getattr(theme.current(), self._tone) if self._tone else ""
        self.value.setStyleSheet(f"color: {color};" if color else "")


class StatePill(QWidget):
    """A rounded badge with a dot: the node's process state at a glance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._look = look(ProcState.STOPPED)
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)

    def set_state(self, state: ProcState) -> None:
        self._look = look(state)
        self.updateGeometry()
        self.update()

    def text(self) -> str:
        return self._look.label

    def _font(self) -> QFont:
        font = QFont(self.font())
        font.setWeight(QFont.DemiBold)
        return font

    def sizeHint(self) -> QSize:
        width = QFontMetrics(self._font()).horizontalAdvance(self._look.label)
        return QSize(width + 36, 26)

    def paintEvent(self, _event) -> None:
        pal = theme.current()
        role = self._look.tone
        color = QColor(getattr(pal, role))
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        fill = QColor(color)
        fill.setAlpha(40)
        painter.setPen(Qt.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setBrush(color)
        painter.drawEllipse(QRectF(12, rect.center().y() - 4, 8, 8))
        painter.setPen(color if role != "muted" else QColor(pal.text))
        painter.setFont(self._font())
        painter.drawText(rect.adjusted(26, 0, -8, 0), Qt.AlignVCenter | Qt.AlignLeft, self._look.label)


class Notice(QFrame):
    """One in-app notification: a coloured strip with a title, a message and a close button."""

    def __init__(self, title: str, text: str, kind: str, parent: QWidget | None = None,
                 action: tuple[str, Callable[[], None]] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setProperty("kind", kind)
        self.title, self.text, self.kind = title, text, kind
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 8, 6, 8)
        label = QLabel(f"<b>{title}</b>&nbsp;&nbsp;{text}")
        label.setWordWrap(True)
        label.setTextFormat(Qt.RichText)
        row.addWidget(label, 1)
        self.action_button = None
        if action is not None:  # one thing the user can do about it (e.g. "Download")
            self.action_button = QPushButton(action[0])
            self.action_button.clicked.connect(lambda: (action[1](), self.dismiss()))
            row.addWidget(self.action_button, 0, Qt.AlignTop)
        close = QPushButton()
        close.setObjectName("link")
        close.setIcon(theme.icon("close", theme.current().muted, 32))
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        row.addWidget(close, 0, Qt.AlignTop)

    def dismiss(self) -> None:
        self.hide()
        self.deleteLater()
