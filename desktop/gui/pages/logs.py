"""Live logs of the node and the local services: filter by level and source, search, follow the tail.

Lines are kept in a bounded ring (old ones fall off) and reach the text view in batches on a timer,
never one widget call per line, so a chatty child cannot starve the event loop. Scrolling up
freezes the view (nothing moves under the reader) until the reader returns to the bottom.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QFont, QGuiApplication, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from desktop.events.text import DEBUG, ERROR, INFO, WARNING, describe
from desktop.gui import theme


MAX_LINES = 20_000
FLUSH_MS = 25
BATCH_LINES = 250  # per flush: 10,000 lines/s of headroom, each flush a short stall
_TAG_AT = 19  # "HH:MM:SS  source__ TAG__  message": where the level tag starts
_TAGS = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARN", ERROR: "ERROR"}
# (label, predicate on an entry); the first is the default
FILTERS = [
    ("All levels", lambda e: True),
    ("Info and above", lambda e: e.level >= INFO),
    ("Warnings and errors", lambda e: e.level >= WARNING),
    ("Errors only", lambda e: e.level >= ERROR),
    ("Events only", lambda e: e.event),
]
SOURCES = [("All sources", None), ("Node", "node"), ("Services", "services"), ("App", "app")]


@dataclass(slots=True)
class Entry:
    seq: int
    source: str
    level: int
    event: bool
    line: str  # what the view shows: time, source, level tag, message


class _Highlighter(QSyntaxHighlighter):
    """Dims the time and source columns and colours the level tag. It runs once per inserted
    line, so it reads fixed columns (see ``LogsPage._add``) with formats made once per theme."""

    def __init__(self, document) -> None:
        super().__init__(document)
        self.formats: dict[str, tuple[QTextCharFormat, QTextCharFormat | None]] = {}
        self.dim = QTextCharFormat()

    def set_palette(self, pal: theme.Palette) -> None:
        self.dim = QTextCharFormat()
        self.dim.setForeground(QColor(pal.muted))
        self.formats = {}
        for tag, color, tint_body in (("DEBUG", pal.muted, False), ("INFO ", None, False),
                                      ("EVENT", pal.accent, False), ("WARN ", pal.warn, True),
                                      ("ERROR", pal.error, True)):
            fmt = QTextCharFormat()
            fmt.setFontWeight(QFont.Bold)
            body = None
            if color:
                fmt.setForeground(QColor(color))
                if tint_body:
                    body = QTextCharFormat()
                    body.setForeground(QColor(color))
            self.formats[tag] = (fmt, body)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        found = self.formats.get(text[_TAG_AT:_TAG_AT + 5])
        if found is None:
            return
        self.setFormat(0, _TAG_AT, self.dim)
        self.setFormat(_TAG_AT, 5, found[0])
        if found[1] is not None:
            self.setFormat(_TAG_AT + 7, len(text) - _TAG_AT - 7, found[1])


class LogsPage(QWidget):
    following_changed = Signal(bool)

    def __init__(self, log_dir=None, parent: QWidget | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.log_dir = log_dir
        self.max_lines = max_lines
        self.ring: collections.deque[Entry] = collections.deque(maxlen=max_lines)
        self._seq = 0
        self._pending: list[Entry] = []  # arrived, not yet on screen (batch or paused)
        self._following = True
        self._programmatic = False  # our own scrolling must not count as the reader's

        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 20)
        root.setSpacing(12)
        head = QHBoxLayout()
        title = QLabel("Logs")
        title.setObjectName("h1")
        head.addWidget(title)
        head.addStretch(1)
        self.count_label = QLabel("")
        self.count_label.setObjectName("muted")
        head.addWidget(self.count_label)
        root.addLayout(head)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.source_box = QComboBox()
        for label, _ in SOURCES:
            self.source_box.addItem(label)
        self.level_box = QComboBox()
        for label, _ in FILTERS:
            self.level_box.addItem(label)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search logs")
        self.search.setClearButtonEnabled(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selection, or every shown line")
        self.folder_button = QPushButton("Open log folder")
        self.clear_button = QPushButton("Clear")
        for widget in (self.source_box, self.level_box):
            bar.addWidget(widget)
        bar.addWidget(self.search, 1)
        for widget in (self.copy_button, self.folder_button, self.clear_button):
            bar.addWidget(widget)
        root.addLayout(bar)

        self.view = QPlainTextEdit()
        self.view.setObjectName("logView")
        self.view.setReadOnly(True)
        self.view.setUndoRedoEnabled(False)
        self.view.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.view.setMaximumBlockCount(max_lines)
        self.view.setPlaceholderText("Nothing logged yet. Start the node to see its output here.")
        self._highlighter = _Highlighter(self.view.document())
        root.addWidget(self.view, 1)

        # shown while the reader has scrolled up
        self.paused_bar = QFrame()
        self.paused_bar.setObjectName("pausedBar")
        paused = QHBoxLayout(self.paused_bar)
        paused.setContentsMargins(12, 4, 6, 4)
        self.paused_label = QLabel("")
        self.resume_button = QPushButton("Jump to latest")
        self.resume_button.setObjectName("link")
        paused.addWidget(self.paused_label, 1)
        paused.addWidget(self.resume_button)
        self.paused_bar.setVisible(False)
        root.addWidget(self.paused_bar)

        self._flush_timer = QTimer(self, singleShot=True, interval=FLUSH_MS)
        self._flush_timer.timeout.connect(lambda: self.flush(BATCH_LINES))
        self._search_timer = QTimer(self, singleShot=True, interval=150)  # re-filter once typing pauses
        self._search_timer.timeout.connect(self.rerender)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.level_box.currentIndexChanged.connect(lambda _i: self.rerender())
        self.source_box.currentIndexChanged.connect(lambda _i: self.rerender())
        self.view.verticalScrollBar().valueChanged.connect(self._on_scroll)
        self.view.verticalScrollBar().rangeChanged.connect(lambda *_: self._stick_to_bottom())
        self.resume_button.clicked.connect(self.resume)
        self.copy_button.clicked.connect(self.copy)
        self.folder_button.clicked.connect(self.open_folder)
        self.clear_button.clicked.connect(self.clear)
        self.restyle()

    # ---- input --------------------------------------------------------------------------------
    def connect_supervisor(self, supervisor, source: str) -> None:
        # Records arrive as `log` events with their level; a raw stderr line is what no logger
        # wrote (a library printing, a crash), so it is shown as a warning, never parsed for one.
        supervisor.log_line.connect(lambda stream, text: self.append_line(
            source, text, WARNING if stream == "stderr" else INFO))
        supervisor.event.connect(lambda ev: self.append_event(source, ev))

    def append_line(self, source: str, text: str, level: int = INFO) -> None:
        self._add(source, level, False, _TAGS[level], text)

    def append_event(self, source: str, event: dict) -> None:
        level, text = describe(event)
        if event["type"] == "log":  # a record, not news: filtered by its level, a traceback line by line
            first, *more = text.split("\n")
            self._add(source, level, False, _TAGS[level], first)
            for line in more:
                self._add(source, level, False, _TAGS[level], "    " + line)
            return
        self._add(source, level, True, "EVENT" if level == INFO else _TAGS[level], text)

    def _add(self, source: str, level: int, is_event: bool, tag: str, text: str) -> None:
        self._seq += 1
        stamp = time.strftime("%H:%M:%S")
        entry = Entry(self._seq, source, level, is_event, f"{stamp}  {source[:8]:<8} {tag:<5}  {text}")
        self.ring.append(entry)
        self._pending.append(entry)
        if self._following and not self._flush_timer.isActive():
            self._flush_timer.start()
        elif not self._following:
            self._update_paused_label()

    # ---- output -------------------------------------------------------------------------------
    def _matches(self) -> "callable":
        level_ok = FILTERS[self.level_box.currentIndex()][1]
        source = SOURCES[self.source_box.currentIndex()][1]
        needle = self.search.text().strip().lower()
        return lambda e: ((source is None or e.source == source) and level_ok(e)
                          and (not needle or needle in e.line.lower()))

    def flush(self, limit: int | None = None) -> None:
        """Put pending lines on screen in one append (no-op while paused). With ``limit``, only
        that many and the timer comes back for the rest, so no single flush stalls the loop."""
        if not self._following or not self._pending:
            return
        if len(self._pending) > self.max_lines:  # more than the view can hold: the rest is gone
            del self._pending[:-self.max_lines]
        take = len(self._pending) if limit is None else min(limit, len(self._pending))
        match = self._matches()
        lines = [e.line for e in self._pending[:take] if match(e)]
        del self._pending[:take]
        if self._pending:
            self._flush_timer.start()
        if lines:
            self._programmatic = True
            self.view.appendPlainText("\n".join(lines))
            self._programmatic = False
            self._stick_to_bottom()
        self._update_count()

    def rerender(self) -> None:
        """Show the ring again through the current filter (after a filter or search change)."""
        match = self._matches()
        lines = [e.line for e in self.ring if match(e)][-self.max_lines:]
        self._pending.clear()
        self._programmatic = True
        self.view.setPlainText("\n".join(lines))
        self._programmatic = False
        self._set_following(True)
        self._stick_to_bottom()
        self._update_count()

    def _stick_to_bottom(self) -> None:
        if self._following:
            bar = self.view.verticalScrollBar()
            self._programmatic = True
            bar.setValue(bar.maximum())
            self._programmatic = False

    def _on_scroll(self, value: int) -> None:
        if self._programmatic:
            return
        at_bottom = value >= self.view.verticalScrollBar().maximum()
        if at_bottom and not self._following:
            self.resume()
        elif not at_bottom and self._following:
            self._set_following(False)

    def resume(self) -> None:
        """Follow the tail again: show what arrived while paused, then stick to the bottom."""
        self._set_following(True)
        if self._pending and self.ring and self._pending[0].seq < self.ring[0].seq:
            self.rerender()  # the ring moved past what was pending: start from the ring
        else:
            self.flush()
        self._stick_to_bottom()

    def _set_following(self, on: bool) -> None:
        if on != self._following:
            self._following = on
            self.paused_bar.setVisible(not on)
            self._update_paused_label()
            self.following_changed.emit(on)

    @property
    def following(self) -> bool:
        return self._following

    def _update_paused_label(self) -> None:
        match = self._matches()
        new = sum(1 for e in self._pending if match(e))
        self.paused_label.setText(f"Paused while you read — {new} new line{'s' * (new != 1)}"
                                  if new else "Paused while you read")

    def _update_count(self) -> None:
        shown = 0 if self.view.document().isEmpty() else self.view.blockCount()
        self.count_label.setText(f"{shown:,} lines shown · {len(self.ring):,} kept")

    def visible_lines(self) -> list[str]:
        text = self.view.toPlainText()
        return text.split("\n") if text else []

    # ---- commands -----------------------------------------------------------------------------
    def copy(self) -> None:
        cursor = self.view.textCursor()
        text = cursor.selectedText().replace("\u2029", "\n") if cursor.hasSelection() else self.view.toPlainText()
        QGuiApplication.clipboard().setText(text)

    def open_folder(self) -> bool:
        if self.log_dir is None:
            return False
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_dir)))

    def clear(self) -> None:
        self.ring.clear()
        self._pending.clear()
        self.view.clear()
        self._set_following(True)
        self._update_count()

    def restyle(self) -> None:
        self.copy_button.setIcon(theme.icon("copy", theme.current().text, 32))
        self.folder_button.setIcon(theme.icon("folder", theme.current().text, 32))
        self.resume_button.setIcon(theme.icon("arrow-down", theme.current().accent, 32))
        self._highlighter.set_palette(theme.current())
