"""LoginView with a real QWebEngineView and a real page served over 127.0.0.1."""

import json
import socket
import time
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

pytest.importorskip("PySide6.QtWebEngineWidgets")
pytestmark = pytest.mark.gui

from desktop.gui.login_view import LoginView  # noqa: E402
from desktop.utils.paths import resource_path  # noqa: E402

WEB = resource_path("web")
# Used only while resources/web is missing: the same element ids as the real page.
FALLBACK_PAGE = b"""<!doctype html><html><body>
<form id="signin-form"><input id="email"><button id="signin" type="submit">Sign in</button></form>
<p id="status">signed out</p><span id="address"></span><ul id="peers"></ul>
<script>
document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await fetch('/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({email: document.getElementById('email').value})});
  if (r.ok) document.getElementById('status').textContent = 'signed in';
});
</script></body></html>"""
TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css"}


class FakeLoginServer(ThreadingHTTPServer):
    """Just enough of the login server: the page, POST /login and GET /login/status."""

    def __init__(self, port=0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.email = None
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/"

    def signed_in(self) -> bool:
        """What the app's check callable does: ask the server."""
        with urllib.request.urlopen(self.url + "login/status", timeout=2) as resp:
            return json.load(resp)["signedIn"]

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    def _send(self, body: bytes, content_type: str, code: int = 200):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(self):
        email = self.server.email
        info = {"signedIn": email is not None}
        if email:
            info |= {"email": email, "address": "0x" + "ab" * 20, "orgId": "org1", "peers": []}
        self._send(json.dumps(info).encode(), "application/json")

    def do_GET(self):
        if self.path.startswith("/login/status"):
            return self._status()
        name = "index.html" if self.path in ("/", "/index.html") else self.path.lstrip("/")
        path = WEB / name
        if (WEB / "index.html").is_file() and path.is_file() and path.parent == WEB:
            return self._send(path.read_bytes(), TYPES.get(path.suffix, "text/plain"))
        if name == "index.html":
            return self._send(FALLBACK_PAGE, "text/html")
        self._send(b"not found", "text/plain", 404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/login" and body.get("email"):
            self.server.email = body["email"]
            return self._status()
        self._send(b'{"error": "bad request"}', "application/json", 400)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = FakeLoginServer()
    yield srv
    srv.stop()


@pytest.fixture
def make_view(qtbot):
    """LoginViews that are really gone (renderer process included) when the test ends."""
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    views = []

    def make(*args, **kw):
        view = LoginView(*args, **kw)
        views.append(view)
        view.show()
        return view

    yield make
    for view in views:
        view.close()
        view.deleteLater()
    # The page's renderer exits once the page is deleted; wait for that rather than leave it
    # for conftest to kill (a killed grandchild lingers as a zombie for seconds).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        qtbot.wait(50)
        if not {c.pid for c in psutil.Process().children(recursive=True)
                if c.status() != psutil.STATUS_ZOMBIE} - before:
            break


@pytest.fixture(scope="module", autouse=True)
def _web_engine_running(qapp):
    """Start QtWebEngine's helper processes before any test.

    conftest kills child processes a test leaves behind; Chromium's zygote and network service
    outlive a page by design, and killing them breaks every later view in this process.
    Started here, before the per-test snapshot, they count as pre-existing and are kept.
    """
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWebEngineWidgets import QWebEngineView

    srv = FakeLoginServer()
    view = QWebEngineView()
    done = []
    view.loadFinished.connect(done.append)
    view.load(srv.url)
    deadline = time.monotonic() + 20
    while not done and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.02)
    yield
    view.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    srv.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _js(view, expr, qtbot):
    box = []
    view.view.page().runJavaScript(expr, 0, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=5000)
    return box[0]


def test_sign_in_through_the_page_emits_signed_in(qtbot, server, make_view):
    view = make_view(server.url, server.signed_in, poll_ms=200)
    qtbot.waitUntil(lambda: _js(view, "document.getElementById('email') !== null", qtbot), timeout=15000)
    assert not view.showing_error

    # the page's own script runs on load; wait until it has settled on "signed out"
    qtbot.waitUntil(lambda: _js(view, "document.getElementById('status').textContent", qtbot)
                    == "signed out", timeout=10000)
    with qtbot.waitSignal(view.signed_in, timeout=10000):
        view.view.page().runJavaScript(
            "document.getElementById('email').value = 'ada@example.com';"
            "document.getElementById('signin').click();")
    assert server.email == "ada@example.com"
    qtbot.waitUntil(lambda: _js(view, "document.getElementById('status').textContent", qtbot)
                    == "signed in", timeout=10000)
    assert not view.timer.isActive()  # polling stops once done


@pytest.mark.slow
def test_server_down_shows_message_and_retry_recovers(qtbot, make_view):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    view = make_view(url, lambda: False, poll_ms=200)
    qtbot.waitUntil(lambda: view.showing_error, timeout=15000)
    assert view.error_label.isVisible()
    assert view.retry_button.isVisible()
    assert "could not be loaded" in view.error_label.text()
    assert url in view.error_label.text()
    assert not view.view.isVisible()  # never a blank page behind the message

    srv = FakeLoginServer(port)
    try:
        view.retry_button.click()
        qtbot.waitUntil(lambda: not view.showing_error and
                        _js(view, "document.getElementById('email') !== null", qtbot), timeout=15000)
        assert view.view.isVisible()
        assert not view.error_label.isVisible()
    finally:
        srv.stop()


def test_page_status_is_used_without_a_check_callable(qtbot, server, make_view):
    server.email = "already@example.com"  # a session from an earlier run
    view = make_view(server.url, None, poll_ms=200)  # no event loop has run yet: no race
    qtbot.waitSignal(view.signed_in, timeout=15000).wait()


def test_the_view_signs_in_on_the_real_login_server_with_its_session_secret(qtbot, make_view, tmp_path):
    """The real server refuses sign-ins without its per-session secret; the view hands the page
    that secret (in the URL's fragment, never in ``url``, which is shown) and signs in."""
    from desktop.services.login_server import LoginServer

    srv = LoginServer(tmp_path, "http://127.0.0.1:9", "0x" + "00" * 20, port=0,  # no chain: no funding
                      use_keyring=False).run_in_thread()
    try:
        view = make_view(srv.url + "/", lambda: srv.store.current() is not None, poll_ms=200,
                         secret_file=srv.session_secret_file)
        qtbot.waitUntil(lambda: _js(view, "document.getElementById('status').textContent", qtbot)
                        == "signed out", timeout=15000)
        with qtbot.waitSignal(view.signed_in, timeout=15000):
            view.view.page().runJavaScript(
                "document.getElementById('email').value = 'ada@example.com';"
                "document.getElementById('signin').click();")
        assert srv.store.current().email == "ada@example.com"
        assert srv.session_secret not in view.url
        assert view.view.url().fragment() == f"s={srv.session_secret}"
    finally:
        srv.stop_thread()


def test_a_missing_or_odd_secret_file_loads_the_page_without_one(tmp_path):
    from desktop.gui.login_view import read_secret

    assert read_secret(None) == ""
    assert read_secret(tmp_path / "absent") == ""
    odd = tmp_path / "odd"
    for text, expected in (("a" * 43 + "\n", "a" * 43), ("abc", ""), ("x" * 40 + "#&s=1", ""), ("é" * 40, "")):
        odd.write_text(text, encoding="utf-8")
        assert read_secret(odd) == expected, text
