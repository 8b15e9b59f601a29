"""A label that shortens its text with an ellipsis when space runs out, instead of widening the page."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import QLabel, QWidget

MIN_CHARS = 6  # the least it shrinks to, in average character widths


class ElidedLabel(QLabel):
    """Plain text only. ``text()`` is always the full text; the tooltip shows it when cut."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setText(text)

    def text(self) -> str:  # noqa: D102 (the full text, not what fits)
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.updateGeometry()
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802
        hint = super().sizeHint()
        margins = self.contentsMargins()
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right() + 2,
                     hint.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(self.sizeHint().width(), self.fontMetrics().averageCharWidth() * MIN_CHARS),
                     super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event) -> None:  # noqa: N802 (a font change from the stylesheet)
        super().changeEvent(event)
        if event.type() in (QEvent.FontChange, QEvent.StyleChange):  # not ToolTipChange: _fit sets it
            self._fit()

    def _fit(self) -> None:
        margins = self.contentsMargins()
        width = max(0, self.width() - margins.left() - margins.right())
        shown = self.fontMetrics().elidedText(self._full, self._mode, width)
        if shown != super().text():
            super().setText(shown)
        tip = self._full if shown != self._full else ""
        if tip != self.toolTip():
            self.setToolTip(tip)
