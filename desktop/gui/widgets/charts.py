"""Small charts painted with QPainter: a line chart and a stacked bar chart, x = round number.

Hand-painted rather than QtCharts: they start instantly, follow the theme at paint time and only
need what a dashboard needs (gaps for missing values, a legend, a hover read-out).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.gui import theme


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, value = [], start
    while value <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


class _Chart(QWidget):
    """Frame, title, legend, axes and hover shared by both charts."""

    max_points = 500  # older rounds scroll out; the table and logs keep the rest

    def __init__(self, title: str, unit: str = "", empty_text: str = "Waiting for the first round…",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self._legend_drop = 0  # set while painting: 20 when the legend takes its own line
        self.unit = unit
        self.empty_text = empty_text
        self.xs: list[int] = []
        self.series: dict[str, list[float | None]] = {}
        self._hover: int | None = None
        self._plot = QRectF()  # where the data went at the last paint, for hover picking
        self.setMouseTracking(True)
        self.setMinimumHeight(180)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def set_data(self, xs: list[int], series: dict[str, list[float | None]]) -> None:
        keep = slice(-self.max_points, None)
        self.xs = list(xs)[keep]
        self.series = {name: list(values)[keep] for name, values in series.items()}
        self._hover = None
        self.update()

    def has_data(self) -> bool:
        return bool(self.xs) and any(v is not None for vals in self.series.values() for v in vals)

    # ---- geometry -----------------------------------------------------------------------------
    def _y_range(self) -> tuple[float, float]:
        values = [v for vals in self.series.values() for v in vals if v is not None]
        return min(values), max(values)

    def _plot_rect(self, painter: QPainter, ticks: list[float]) -> QRectF:
        fm = painter.fontMetrics()
        left = max(fm.horizontalAdvance(fmt(t)) for t in ticks) + 14
        top = 44 + self._legend_drop  # below the legend when it had to take a line of its own
        return QRectF(14 + left, top, self.width() - left - 30, self.height() - top - 30)

    def _x_pos(self, plot: QRectF, index: int) -> float:
        n = len(self.xs)
        if n == 1:
            return plot.center().x()
        return plot.left() + plot.width() * index / (n - 1)

    # ---- painting -----------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:
        pal = theme.current()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QPen(QColor(pal.border), 1))
        painter.setBrush(QColor(pal.surface))
        painter.drawRoundedRect(frame, 10, 10)
        title_font = QFont(painter.font())
        title_font.setWeight(QFont.DemiBold)
        painter.setFont(title_font)
        painter.setPen(QColor(pal.text))
        title = self.title + (f" ({self.unit})" if self.unit else "")
        painter.drawText(QRectF(16, 10, self.width() - 32, 22), Qt.AlignLeft | Qt.AlignVCenter, title)
        title_right = 16 + painter.fontMetrics().horizontalAdvance(title) + 16
        painter.setFont(self.font())
        self._paint_legend(painter, pal, title_right)
        if not self.has_data():
            painter.setPen(QColor(pal.muted))
            painter.drawText(QRectF(self.rect()).adjusted(24, 30, -24, 0), Qt.AlignCenter | Qt.TextWordWrap,
                             self.empty_text)
            return
        lo, hi = self._y_range()
        ticks = nice_ticks(lo, hi)
        plot = self._plot = self._plot_rect(painter, ticks)
        if plot.width() < 20 or plot.height() < 20:
            return
        y_lo, y_hi = ticks[0], ticks[-1]

        def y_pos(value: float) -> float:
            return plot.bottom() - (value - y_lo) / (y_hi - y_lo) * plot.height()

        painter.setPen(QPen(QColor(pal.grid), 1))
        for tick in ticks:
            painter.drawLine(QPointF(plot.left(), y_pos(tick)), QPointF(plot.right(), y_pos(tick)))
        painter.setPen(QColor(pal.muted))
        for tick in ticks:
            painter.drawText(QRectF(0, y_pos(tick) - 9, plot.left() - 8, 18),
                             Qt.AlignRight | Qt.AlignVCenter, fmt(tick))
        self._paint_x_labels(painter, plot)
        self._paint_data(painter, plot, y_pos, pal)
        if self._hover is not None and self._hover < len(self.xs):
            self._paint_hover(painter, plot, pal)

    def _paint_legend(self, painter: QPainter, pal: theme.Palette, title_right: float) -> None:
        self._legend_drop = 0
        if len(self.series) < 2:
            return
        fm = painter.fontMetrics()
        needed = sum(fm.horizontalAdvance(name) + 28 for name in self.series)  # text + swatch + gaps
        y = 10
        if self.width() - 16 - needed < title_right:  # a narrow chart: the legend goes under the title
            y, self._legend_drop = 30, 20
        x = self.width() - 16
        for i, name in reversed(list(enumerate(self.series))):
            width = fm.horizontalAdvance(name)
            x -= width
            painter.setPen(QColor(pal.muted))
            painter.drawText(QRectF(x, y, width + 2, 22), Qt.AlignVCenter, name)
            x -= 14
            painter.setPen(Qt.NoPen)
            painter.setBrush(QColor(pal.series[i % len(pal.series)]))
            painter.drawRoundedRect(QRectF(x, y + 6, 9, 9), 2, 2)
            x -= 14

    def _paint_x_labels(self, painter: QPainter, plot: QRectF) -> None:
        fm = QFontMetrics(painter.font())
        room = max(fm.horizontalAdvance(str(self.xs[-1])) + 16, 36)
        every = max(1, math.ceil(len(self.xs) * room / max(plot.width(), 1)))
        for i in range(len(self.xs) - 1, -1, -every):  # anchor labels on the newest round
            x = self._x_pos(plot, i)
            painter.drawText(QRectF(x - room / 2, plot.bottom() + 6, room, 18), Qt.AlignCenter, str(self.xs[i]))

    def _values_at(self, index: int) -> list[tuple[str, float | None]]:
        return [(name, vals[index] if index < len(vals) else None) for name, vals in self.series.items()]

    def _paint_hover(self, painter: QPainter, plot: QRectF, pal: theme.Palette) -> None:
        x = self._x_pos(plot, self._hover)
        painter.setPen(QPen(QColor(pal.muted), 1, Qt.DashLine))
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        lines = [f"round {self.xs[self._hover]}"] + [
            f"{name}: {'—' if v is None else fmt(v)}" for name, v in self._values_at(self._hover)]
        fm = painter.fontMetrics()
        width = max(fm.horizontalAdvance(line) for line in lines) + 20
        height = fm.height() * len(lines) + 12
        left = x + 10 if x + 10 + width < plot.right() else x - 10 - width
        box = QRectF(left, plot.top() + 4, width, height)
        painter.setPen(QPen(QColor(pal.border), 1))
        painter.setBrush(QColor(pal.surface))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor(pal.text))
        for i, line in enumerate(lines):
            painter.drawText(QRectF(box.left() + 10, box.top() + 6 + i * fm.height(), width, fm.height()),
                             Qt.AlignVCenter, line)

    def _paint_data(self, painter, plot, y_pos, pal) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- hover --------------------------------------------------------------------------------
    def _index_at(self, x: float) -> int:
        n, plot = len(self.xs), self._plot
        return round((x - plot.left()) / max(plot.width(), 1.0) * (n - 1)) if n > 1 else 0

    def mouseMoveEvent(self, event) -> None:
        if not self.xs or self._plot.isEmpty():
            return
        index = min(max(self._index_at(event.position().x()), 0), len(self.xs) - 1)
        if index != self._hover:
            self._hover = index
            self.update()

    def leaveEvent(self, _event) -> None:
        self._hover = None
        self.update()


class LineChart(_Chart):
    """One line per series; ``None`` leaves a gap (a round without that value)."""

    def _paint_data(self, painter: QPainter, plot: QRectF, y_pos, pal: theme.Palette) -> None:
        painter.save()
        painter.setClipRect(plot.adjusted(-4, -4, 4, 4))
        for i, (name, values) in enumerate(self.series.items()):
            color = QColor(pal.series[i % len(pal.series)])
            path, open_path = QPainterPath(), False
            lone: list[QPointF] = []
            for j, value in enumerate(values):
                if value is None:
                    open_path = False
                    continue
                point = QPointF(self._x_pos(plot, j), y_pos(value))
                if open_path:
                    path.lineTo(point)
                else:
                    path.moveTo(point)
                    open_path = True
                    if j + 1 >= len(values) or values[j + 1] is None:
                        lone.append(point)  # a single value between gaps still shows
            if len(self.series) == 1:  # a soft area under a lone series
                fill = QColor(color)
                fill.setAlpha(28)
                area = QPainterPath(path)
                if not path.isEmpty():
                    area.lineTo(QPointF(path.currentPosition().x(), plot.bottom()))
                    first = path.elementAt(0)
                    area.lineTo(QPointF(first.x, plot.bottom()))
                    area.closeSubpath()
                    if all(v is not None for v in values):
                        painter.fillPath(area, fill)
            painter.setPen(QPen(color, 2.2, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
            painter.setBrush(Qt.NoBrush)
            painter.drawPath(path)
            painter.setBrush(color)
            painter.setPen(Qt.NoPen)
            dots = lone if len(values) > 40 else [QPointF(self._x_pos(plot, j), y_pos(v))
                                                  for j, v in enumerate(values) if v is not None]
            for point in dots:
                painter.drawEllipse(point, 3, 3)
        painter.restore()


class StackedBarChart(_Chart):
    """Bars of stacked parts (e.g. generate / reward / train / comm seconds per round)."""

    max_points = 40

    def _y_range(self) -> tuple[float, float]:
        totals = [sum(v or 0.0 for v in parts) for parts in zip(*self.series.values())] or [0.0]
        return 0.0, max(totals)

    def _values_at(self, index: int) -> list[tuple[str, float | None]]:
        values = super()._values_at(index)
        return values + [("total", sum(v or 0.0 for _, v in values))]

    def _x_pos(self, plot: QRectF, index: int) -> float:
        slot = plot.width() / max(len(self.xs), 1)
        return plot.left() + slot * (index + 0.5)

    def _paint_data(self, painter: QPainter, plot: QRectF, y_pos, pal: theme.Palette) -> None:
        slot = plot.width() / max(len(self.xs), 1)
        bar = max(2.0, min(slot * 0.68, 36.0))
        painter.setPen(Qt.NoPen)
        for j in range(len(self.xs)):
            x = self._x_pos(plot, j) - bar / 2
            base = 0.0
            for i, values in enumerate(self.series.values()):
                value = values[j] if j < len(values) and values[j] else 0.0
                if value <= 0:
                    continue
                top, bottom = y_pos(base + value), y_pos(base)
                painter.setBrush(QColor(pal.series[i % len(pal.series)]))
                painter.drawRect(QRectF(x, top, bar, max(bottom - top, 0.0)))
                base += value

    def _index_at(self, x: float) -> int:
        return int((x - self._plot.left()) / max(self._plot.width(), 1.0) * len(self.xs))
