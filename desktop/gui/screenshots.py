"""`rl-swarm gui --screenshot DIR`: run a tiny node, then save every page (light and dark) as PNG.

Used to look at the real app (under Xvfb or offscreen) and by the tests: the pages show live data
from a real node, not mock-ups. Exits 0 when every page was saved, 1 otherwise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication

ROUNDS = 2
TIMEOUT_S = 240
SERVICES_WAIT_S = 60


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


class ScreenshotRun(QObject):
    def __init__(self, window, out_dir: Path, rounds: int = ROUNDS, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(window)
        self.window = window
        self.out_dir = Path(out_dir)
        self.rounds = rounds
        self.saved: list[Path] = []
        self._finished_rounds = 0
        self._done = False
        self._services_settled = False
        self._timeout = QTimer(self, singleShot=True, interval=int(timeout_s * 1000))
        self._timeout.timeout.connect(self._on_timeout)

    def start(self) -> None:
        self._began = time.monotonic()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        node = self.window.node
        node.event.connect(self._on_event)
        node.gave_up.connect(lambda outcome: self._fail(f"node failed: {outcome.describe()}"))
        self._timeout.start()
        self.window.show_page("dashboard")
        self._settle()
        self._grab("dashboard-idle")  # before the node runs: the empty states
        node.start()

    def _start_services(self) -> None:
        """The local services bring the sign-in page; without them (or if they fail) it is
        skipped. Started once the node has its rounds: a node that finds them running follows the
        chain's rounds, a minute each, which would make this run slow."""
        services = self.window.services
        if services is None:
            self._services_done()
            return
        services.ready.connect(lambda _info: self._services_done())
        services.finished.connect(lambda _outcome: self._services_done())
        services.start()
        QTimer.singleShot(SERVICES_WAIT_S * 1000, self._services_done)

    def _services_done(self) -> None:
        if not self._services_settled:
            self._say("local services settled")
        self._services_settled = True
        self._maybe_capture()

    def _on_event(self, ev: dict) -> None:
        if ev.get("type") == "round_finished":
            self._finished_rounds += 1
            if self._finished_rounds <= self.rounds:
                self._say(f"round {ev.get('round')} finished")
            if self._finished_rounds == self.rounds:
                self._start_services()

    def _maybe_capture(self) -> None:
        if self._services_settled and not self._done:
            QTimer.singleShot(300, self.capture)  # let the pages render the last round

    def _on_timeout(self) -> None:
        self._fail(f"timed out after {self._timeout.interval() / 1000:.0f} s "
                   f"({self._finished_rounds}/{self.rounds} rounds)")

    def _fail(self, why: str) -> None:
        if self._done:
            return
        print(f"screenshots: {why}; saving what the pages show now")
        self.capture(code=1)

    def capture(self, code: int = 0) -> None:
        if self._done:
            return
        self._done = True
        self._timeout.stop()
        window = self.window
        themes = window.themes
        schemes = ("light", "dark") if themes is not None else ("",)
        for scheme in schemes:
            if themes is not None:
                themes.set_choice(scheme)  # not saved: the user's choice stays in gui.ini
            suffix = "" if scheme in ("", "light") else f"-{scheme}"
            for key in window.page_names():
                page = window.show_page(key)
                self._settle()
                if key == "login":
                    self._wait_for_web_page(page)
                self._grab(f"{key}{suffix}")
                if key == "settings":
                    self._settings_pages(page, suffix)
            window.show_page("dashboard")
        if themes is not None:
            themes.set_choice(str(window.settings_store.value("appearance", "system")))
        self._say(f"{len(self.saved)} pages saved")
        print("\n".join(str(path) for path in self.saved))
        window.stop_children()
        self._say("node and services stopped")
        QTimer.singleShot(0, lambda: QApplication.instance().exit(code))

    def _wait_for_web_page(self, holder) -> None:
        from desktop.gui.login_view import LoginView  # QtWebEngine: only where a page is shown

        view = holder.findChild(LoginView)
        if view is None:
            return
        loop = QEventLoop()
        if view.view.page().isLoading() or view.view.url().isEmpty():
            view.view.loadFinished.connect(loop.quit)
            QTimer.singleShot(15000, loop.quit)
            loop.exec()
        QTimer.singleShot(800, loop.quit)  # the first frame of the page after loading
        loop.exec()

    def _settings_pages(self, holder, suffix: str) -> None:
        from desktop.gui.settings import SettingsWidget  # built when first shown

        widget = holder.findChild(SettingsWidget)
        if widget is None:
            return
        for row, sub in enumerate(widget.pages):
            widget.list.setCurrentRow(row)
            self._settle()
            self._grab(f"settings-{_slug(sub.title)}{suffix}")
        widget.list.setCurrentRow(0)

    def _say(self, what: str) -> None:
        print(f"screenshots: {time.monotonic() - self._began:6.1f} s  {what}", flush=True)

    def _settle(self) -> None:
        app = QApplication.instance()
        for _ in range(3):
            app.processEvents()

    def _grab(self, name: str) -> None:
        path = self.out_dir / f"{name}.png"
        if self.window.grab().save(str(path)):
            self.saved.append(path)
