"""Colours, the application stylesheet and tinted icons, for a light and a dark scheme.

The scheme follows the system (``QStyleHints.colorScheme``) unless the user picked one. Widgets that
paint themselves (charts, cards) read ``current()`` at paint time, so a scheme switch only needs a
repaint, never a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QByteArray, QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from desktop.utils.paths import resource_path


@dataclass(frozen=True)
class Palette:
    name: str
    window: str      # page background
    surface: str     # cards, tables, inputs
    sidebar: str
    text: str
    muted: str       # secondary text, axes
    border: str
    grid: str        # chart grid lines
    accent: str
    accent_text: str  # text on an accent background
    selection: str   # sidebar selection / hover
    ok: str
    warn: str
    error: str
    series: tuple[str, ...]  # chart series colours, in order


LIGHT = Palette(
    name="light", window="#f4f5f7", surface="#ffffff", sidebar="#eceef2", text="#1c2230",
    muted="#687082", border="#dfe2e8", grid="#eceef2", accent="#4660e6", accent_text="#ffffff",
    selection="#dde3fb", ok="#1a9a5a", warn="#c27803", error="#d33636",
    series=("#4660e6", "#9b51e0", "#e8833a", "#23a39a", "#8a93a6"),
)
DARK = Palette(
    name="dark", window="#15171c", surface="#1e2128", sidebar="#1a1c22", text="#e4e7ec",
    muted="#969daa", border="#2d313a", grid="#262a32", accent="#7b90ff", accent_text="#0f1220",
    selection="#2b3350", ok="#3cc98a", warn="#f0a93a", error="#f47171",
    series=("#7b90ff", "#c08cff", "#f39b5a", "#3fc7bb", "#8b93a3"),
)

_current: Palette = LIGHT


def current() -> Palette:
    return _current


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hints is not None else Qt.ColorScheme.Unknown
    return scheme == Qt.ColorScheme.Dark


def _url(name: str) -> str:
    return resource_path("icons", f"{name}.svg").as_posix()


def stylesheet(p: Palette) -> str:
    # One sheet for the whole app; object names select the few special widgets. Styling a combo
    # box or spin box border drops its native arrows, so they are drawn from icons here.
    return f"""
QWidget {{ color: {p.text}; font-size: 13px; }}
QMainWindow, QStackedWidget, #page {{ background: {p.window}; }}
QToolTip {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.border}; padding: 4px; }}
#sidebar {{ background: {p.sidebar}; border: none; border-right: 1px solid {p.border}; }}
#sidebar QListWidget {{ background: transparent; border: none; outline: none; padding: 0; }}
#sidebar QListWidget::item {{ padding: 9px 10px; margin: 2px 8px; border-radius: 7px; color: {p.text}; }}
#sidebar QListWidget::item:hover {{ background: {p.selection}; }}
#sidebar QListWidget::item:selected {{ background: {p.selection}; color: {p.accent}; font-weight: 600; }}
#brand {{ font-size: 15px; font-weight: 700; }}
#brandSub, #muted {{ color: {p.muted}; }}
#h1 {{ font-size: 22px; font-weight: 700; }}
#h2 {{ font-size: 14px; font-weight: 600; }}
#mono {{ font-family: "DejaVu Sans Mono", "Menlo", "Consolas", monospace; color: {p.muted}; }}
#card {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 10px; }}
QPushButton {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 7px;
              padding: 6px 14px; }}
QPushButton:hover {{ border-color: {p.accent}; }}
QPushButton:disabled {{ color: {p.muted}; background: {p.window}; }}
QPushButton#primary {{ background: {p.accent}; color: {p.accent_text}; border-color: {p.accent};
                      font-weight: 600; }}
QPushButton#primary:disabled {{ background: {p.border}; color: {p.muted}; border-color: {p.border}; }}
QPushButton#danger {{ color: {p.error}; }}
QPushButton#link {{ border: none; background: transparent; color: {p.accent}; padding: 2px 4px; }}
QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: {p.surface}; border: 1px solid {p.border};
              border-radius: 6px; padding: 5px 8px; selection-background-color: {p.accent}; }}
QLineEdit:focus, QComboBox:focus, QSpinBox:focus, QDoubleSpinBox:focus {{ border-color: {p.accent}; }}
QComboBox {{ padding-right: 24px; }}
QComboBox::drop-down {{ subcontrol-origin: padding; subcontrol-position: center right; width: 24px;
              border: none; }}
QComboBox::down-arrow {{ image: url({_url("chevron-down")}); width: 12px; height: 12px; }}
QSpinBox, QDoubleSpinBox {{ padding-right: 22px; }}
QSpinBox::up-button, QDoubleSpinBox::up-button {{ subcontrol-origin: border; subcontrol-position: top right;
              width: 20px; border: none; background: transparent; }}
QSpinBox::down-button, QDoubleSpinBox::down-button {{ subcontrol-origin: border;
              subcontrol-position: bottom right; width: 20px; border: none; background: transparent; }}
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {{ image: url({_url("chevron-up")}); width: 10px; height: 10px; }}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow {{ image: url({_url("chevron-down")}); width: 10px;
              height: 10px; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 16px; height: 16px; border: 1px solid {p.muted};
              background: {p.surface}; }}
QCheckBox::indicator {{ border-radius: 4px; }}
QRadioButton::indicator {{ border-radius: 9px; }}
QCheckBox::indicator:checked {{ background: {p.accent}; border-color: {p.accent};
              image: url({_url("check")}); }}
QRadioButton::indicator:checked {{ background: {p.accent}; border: 4px solid {p.surface};
              outline: none; }}
QCheckBox::indicator:disabled {{ background: {p.window}; border-color: {p.border}; }}
QListWidget {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px; padding: 4px;
              outline: none; }}
QListWidget::item {{ padding: 6px 8px; border-radius: 6px; }}
QListWidget::item:hover {{ background: {p.window}; }}
QListWidget::item:selected {{ background: {p.selection}; color: {p.text}; }}
#cardValue {{ font-size: 22px; font-weight: 700; }}
#cardTitle {{ font-size: 11px; font-weight: 600; color: {p.muted}; letter-spacing: 0.5px; }}
QHeaderView::section {{ font-size: 11px; }}
QTableWidget#flatTable {{ border: none; border-radius: 0; background: transparent;
              border-top: 1px solid {p.border}; }}
QComboBox QAbstractItemView {{ background: {p.surface}; border: 1px solid {p.border};
                              selection-background-color: {p.selection}; selection-color: {p.text}; }}
QPlainTextEdit, QTextEdit {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px;
              selection-background-color: {p.accent}; selection-color: {p.accent_text}; }}
QPlainTextEdit#logView {{ font-family: "DejaVu Sans Mono", "Menlo", "Consolas", monospace; font-size: 12px; }}
QTableWidget, QTableView {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px;
              gridline-color: {p.grid}; alternate-background-color: {p.window}; }}
QHeaderView::section {{ background: {p.surface}; color: {p.muted}; border: none;
              border-bottom: 1px solid {p.border}; padding: 6px 3px; font-weight: 600; }}
QTableCornerButton::section {{ background: {p.surface}; border: none; }}
QStatusBar {{ background: {p.sidebar}; border-top: 1px solid {p.border}; color: {p.muted}; }}
QStatusBar QLabel {{ color: {p.muted}; padding: 0 6px; }}
QMenuBar {{ background: {p.sidebar}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {p.selection}; color: {p.text}; }}
QMenu {{ background: {p.surface}; border: 1px solid {p.border}; padding: 4px; }}
QMenu::item {{ padding: 5px 22px; border-radius: 4px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {p.border}; border-radius: 4px; min-height: 30px; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {p.border}; border-radius: 4px; min-width: 30px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollArea {{ border: none; background: transparent; }}
#notice {{ border-radius: 8px; padding: 2px; }}
#notice[kind="info"] {{ background: {p.selection}; }}
#notice[kind="ok"] {{ background: {_mix(p.ok, p.surface, 0.18)}; }}
#notice[kind="warn"] {{ background: {_mix(p.warn, p.surface, 0.2)}; }}
#notice[kind="error"] {{ background: {_mix(p.error, p.surface, 0.2)}; }}
#notice QLabel {{ background: transparent; }}
#pausedBar {{ background: {p.selection}; border-radius: 6px; }}
"""


def _mix(color: str, base: str, amount: float) -> str:
    """``amount`` of ``color`` over ``base`` (stylesheets cannot blend)."""
    a, b = QColor(color), QColor(base)
    mixed = QColor(round(a.red() * amount + b.red() * (1 - amount)),
                   round(a.green() * amount + b.green() * (1 - amount)),
                   round(a.blue() * amount + b.blue() * (1 - amount)))
    return mixed.name()


def qpalette(p: Palette) -> QPalette:
    pal = QPalette()
    roles = {QPalette.Window: p.window, QPalette.WindowText: p.text, QPalette.Base: p.surface,
             QPalette.AlternateBase: p.window, QPalette.Text: p.text, QPalette.Button: p.surface,
             QPalette.ButtonText: p.text, QPalette.Highlight: p.accent, QPalette.HighlightedText: p.accent_text,
             QPalette.ToolTipBase: p.surface, QPalette.ToolTipText: p.text, QPalette.PlaceholderText: p.muted,
             QPalette.Link: p.accent}
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    pal.setColor(QPalette.Disabled, QPalette.Text, QColor(p.muted))
    pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor(p.muted))
    return pal


_fusion_set = False


class ThemeManager(QObject):
    """Applies a scheme to the app and re-applies it when the system scheme flips."""

    changed = Signal(object)  # Palette

    def __init__(self, app, choice: str = "system") -> None:
        super().__init__(app)
        self._app = app
        self.choice = choice
        hints = QGuiApplication.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(lambda _scheme: self.apply())

    def set_choice(self, choice: str) -> None:
        self.choice = choice if choice in ("system", "light", "dark") else "system"
        self.apply()

    def apply(self) -> Palette:
        global _current, _fusion_set
        dark = self.choice == "dark" or (self.choice == "system" and system_is_dark())
        _current = DARK if dark else LIGHT
        # The same widgets everywhere (the native styles ignore parts of the sheet). Set once: a new
        # QStyle per switch crashed the second switch while a QWizard (the first-run wizard) existed.
        if not _fusion_set:  # once per process (one QApplication), whichever ThemeManager comes first
            self._app.setStyle("Fusion")
            _fusion_set = True
        self._app.setPalette(qpalette(_current))
        self._app.setStyleSheet(stylesheet(_current))
        self.changed.emit(_current)
        return _current


@lru_cache(maxsize=128)
def _svg(name: str) -> str:
    return resource_path("icons", f"{name}.svg").read_text(encoding="utf-8")


def icon(name: str, color: str | None = None, size: int = 64) -> QIcon:
    """An icon from resources/icons, with ``currentColor`` painted in ``color`` (default: text)."""
    return QIcon(pixmap(name, color, size))


def pixmap(name: str, color: str | None = None, size: int = 64) -> QPixmap:
    # Rendered at the asked size (not scaled from another) so small sidebar icons stay crisp.
    svg = _svg(name).replace("currentColor", color or _current.text)
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    pix = QPixmap(size, size)
    pix.fill(Qt.transparent)
    painter = QPainter(pix)
    renderer.render(painter)
    painter.end()
    return pix
