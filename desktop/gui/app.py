"""`rl-swarm gui`: the desktop app's entry point.

One app per data dir: a second launch finds the first through a QLocalServer named after the data
dir, asks it to raise its window and exits 0. Qt runs under a qasync loop so asyncio code can share
the GUI thread. Heavy parts (settings, sign-in page) load later, and the node runs in a child
process: this module must never import torch, transformers or hivemind.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import signal
import socket
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, QSocketNotifier, QTimer, QUrl, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication

from desktop.events.history import history_file
from desktop.gui import protect_singletons, theme
from desktop.gui.context import AppContext
from desktop.gui.processes.children import NodeSupervisor, ServicesSupervisor
from desktop.gui.settings.huggingface import node_env
from desktop.gui.shell.main_window import MainWindow
from desktop.gui.shell.tray import tray_available
from desktop.utils.paths import resource_path


CONNECT_MS = 500
FIRST_PAINT_ENV = "RL_SWARM_GUI_QUIT_AFTER_PAINT"
_WAKEUP: list = []  # the signal wake-up socket pair and its notifier


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rl-swarm gui", description="The RL Swarm desktop app.")
    parser.add_argument("--data-dir", type=Path, default=None, help="this peer's data directory")
    parser.add_argument("--screenshot", type=Path, metavar="DIR",
                        help="run a tiny node, save a PNG of every page to DIR, then exit")
    return parser.parse_args(argv)


def server_name(data_dir: Path) -> str:
    """Per user and data dir (two peers with two data dirs may each have their app)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "user"
    digest = hashlib.sha1(f"{user}:{Path(data_dir).resolve()}".encode()).hexdigest()[:16]
    return f"rl-swarm-desktop-{digest}"


def send_to_running(name: str, message: str = "raise", timeout_ms: int = CONNECT_MS) -> bool:
    """True if an app already serves ``name`` and took the message."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(timeout_ms):
        return False
    socket.write(message.encode() + b"\n")
    socket.flush()  # usually writes it all; waitForBytesWritten() is False when nothing is left
    ok = socket.bytesToWrite() == 0 or socket.waitForBytesWritten(timeout_ms)
    socket.disconnectFromServer()
    if socket.state() != QLocalSocket.UnconnectedState:
        socket.waitForDisconnected(timeout_ms)
    return ok


class SingleInstance(QObject):
    """The first app's end: listens and emits each message a later launch sends."""

    message = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.UserAccessOption)
        self.server.newConnection.connect(self._on_connection)

    def listen(self) -> bool:
        if self.server.listen(self.name):
            return True
        # A crashed app leaves its socket file behind: nobody answered, so it is stale.
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def _on_connection(self) -> None:
        # No Python reference to a socket outlives this call (a lambda holding one crashes at
        # exit once Qt has deleted it): slots find their socket through sender().
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.readyRead.connect(self._on_ready_read)
            socket.disconnected.connect(socket.deleteLater)
            self._read(socket)

    def _on_ready_read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        while socket.canReadLine():
            text = bytes(socket.readLine().data()).decode("utf-8", "replace").strip()
            if text:
                self.message.emit(text)

    def close(self) -> None:
        self.server.close()


def create_app(argv_for_qt: list[str] | None = None) -> QApplication:
    protect_singletons()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium refuses to run its sandbox as root and aborts the sign-in page; many users run
        # this on a rented VM as root, where there is no other user to sandbox against anyway.
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    app = QApplication.instance() or QApplication(argv_for_qt or [sys.argv[0]])
    app.setApplicationName("RL Swarm")
    app.setApplicationDisplayName("RL Swarm")
    app.setOrganizationName("rl-swarm-desktop")
    app.setDesktopFileName("rl-swarm-desktop")
    return app


def build_window(ctx: AppContext, app: QApplication, node_args: tuple[str, ...] = ()):
    """The window with its supervisors, tray and theme, as main() runs it (also for benchmarks)."""

    store = QSettings(str(ctx.gui_settings_file()), QSettings.IniFormat)
    themes = theme.ThemeManager(app, str(store.value("appearance", "system")))
    themes.apply()
    app.setWindowIcon(theme.icon("app", size=256))
    node = NodeSupervisor(lambda: ctx.app_node_command(*node_args), parent=app, history=history_file(ctx.paths.data),
                          env_factory=lambda: node_env(ctx), log_path=ctx.paths.logs / "node-console.log",
                          stop_by_stdin=not ctx.runtime.signals_reach_children)
    services = ServicesSupervisor(lambda: ctx.services_command(), parent=app,
                                  log_path=ctx.paths.logs / "services-console.log",
                                  stop_by_stdin=not ctx.runtime.signals_reach_children)
    has_tray = tray_available()
    window = MainWindow(ctx, node, services, themes, tray_available=has_tray)
    # With a tray, closing the window keeps the node running; Quit in the tray menu ends it.
    app.setQuitOnLastWindowClosed(not has_tray)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = AppContext.create(args.data_dir)
    name = server_name(ctx.paths.data)
    if args.screenshot is None and send_to_running(name, "raise"):
        print("RL Swarm is already running for this data directory: raised its window.")
        return 0
    app = create_app()
    instance = SingleInstance(name, app)
    if args.screenshot is None:
        instance.listen()
    window = build_window(ctx, app, ("--pool", "tiny") if args.screenshot else ())
    instance.message.connect(lambda text: window.bring_to_front() if text == "raise" else None)
    app.aboutToQuit.connect(window.stop_children)
    if os.environ.get(FIRST_PAINT_ENV):
        _quit_after_first_paint(window, app)
    window.show()
    app.processEvents()  # the first frame now, before asyncio and qasync load
    if args.screenshot is not None:
        from desktop.gui.screenshots import ScreenshotRun  # only with --screenshot

        run = ScreenshotRun(window, args.screenshot)
        run.start()
    else:
        # after the first frame: the flow (first run, services, sign-in) and the update check
        from desktop.gui.flow import AppFlow
        from desktop.gui.update_check import UpdateCheck

        window.flow = AppFlow(window)
        QTimer.singleShot(0, window.flow.start)  # once the window is on screen
        window.updates = UpdateCheck(window)
        window.updates.start()  # a while later, in a worker thread; only with a feed configured
    _quit_on_signals(app, lambda: _quit_now(window, app))
    loop = _event_loop(app)
    try:
        code = loop.run_forever() if loop is not None else app.exec()
    finally:
        instance.close()
        if loop is not None:
            loop.close()
    return int(code or 0)


class _FirstPaint(QObject):
    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.app, self.seen = app, False

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Paint and not self.seen:
            self.seen = True
            QTimer.singleShot(0, self._done)  # runs once this paint has been processed
        return False

    def _done(self) -> None:
        print("painted", flush=True)
        if os.environ.get(FIRST_PAINT_ENV) == "web":
            self._load_web()
        else:
            self.app.quit()

    def _load_web(self) -> None:
        """`rl-swarm self-test`: the embedded browser the sign-in page needs renders a page too."""
        from PySide6.QtWebEngineWidgets import QWebEngineView  # Chromium: only for the self-test's page

        self.view = QWebEngineView()
        self.view.resize(400, 300)

        def finished(ok: bool) -> None:
            print("web ok" if ok else "web failed", flush=True)
            self.app.quit()

        self.view.loadFinished.connect(finished)
        QTimer.singleShot(60_000, lambda: finished(False))
        self.view.load(QUrl.fromLocalFile(str(resource_path("web", "index.html"))))
        self.view.show()


def _quit_after_first_paint(window, app: QApplication) -> None:
    """For benchmarks/gui_startup.py: say "painted" after the first frame, then quit (with
    RL_SWARM_GUI_QUIT_AFTER_PAINT=web, after a page has loaded in the embedded browser)."""
    window.installEventFilter(_FirstPaint(app))


def _quit_on_signals(app: QApplication, quit_app) -> None:
    """SIGTERM (a logout, `kill`), SIGINT and SIGHUP end the app as the tray's Quit does: node and
    services stopped, not orphaned. (QApplication.quit() alone first asks the window to close,
    which with a tray only hides it: the app stayed in the tray with everything running.)

    Python runs its handlers only between bytecodes, and the Qt loop sits in C++: the C-level
    handler writes to a socket (signal.set_wakeup_fd) that a QSocketNotifier watches, so the loop
    wakes and Python runs the handler at once; the handler only queues the quit for the loop."""


    def on_signal(*_args) -> None:
        QTimer.singleShot(0, quit_app)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    try:
        reader, writer = socket.socketpair()
        for sock in (reader, writer):
            sock.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (OSError, ValueError):  # no wake-up socket here: a light timer gives Python its turns
        tick = QTimer(app, interval=300)
        tick.timeout.connect(lambda: None)
        tick.start()
        return

    def drain() -> None:  # the bytes only woke us; the handler has run by now
        try:
            while reader.recv(512):
                pass
        except OSError:
            pass

    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)
    notifier.activated.connect(drain)
    _WAKEUP[:] = [reader, writer, notifier]  # alive as long as the app


def _quit_now(window, app: QApplication) -> None:
    """The tray's Quit (stop node and services, then quit), then leave the loop even if some
    window refused to close: a signal to stop is not a request the user can cancel."""
    if not window.quitting:  # a second signal while stopping: just leave
        window.request_quit()
    app.exit(0)


def _event_loop(app: QApplication):
    try:  # an optional part: without it the app runs on Qt's own loop
        import asyncio

        import qasync
    except ImportError:  # the GUI still works without asyncio integration
        return None
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


if __name__ == "__main__":
    sys.exit(main())
