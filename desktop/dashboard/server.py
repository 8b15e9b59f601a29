"""The web dashboard of a headless node (or of `rl-swarm swarm`'s peers): one page, live.

The app attaches to a node through the same URL (File > Connect to a node…): it reads
``/api/events`` (the node's own events, in order) and sends the same commands. Served on ``dashboard.bind`` (127.0.0.1 unless the config says otherwise, with a warning) and
``dashboard.port``, by aiohttp on a thread of its own, so a node without an event loop serves it
too. Every route needs the token (``<data dir>/dashboard/token``, 0600, made once and kept): the
page is opened as ``/?token=…``, and its own calls carry it in a header, so a page elsewhere can
neither read the state (no CORS) nor forge a command (a custom header and a JSON body need a
preflight that is never granted; a foreign Origin is refused outright). Requests for another
host name are refused (DNS rebinding). Nothing but the page and its two API routes is served.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import threading
import time
from typing import Callable

from aiohttp import web

from desktop.dashboard.token import read_token, token_path
from desktop.dashboard.view import PeerView
from desktop.utils.fsutil import write_private
from desktop.utils.paths import resource_path

log = logging.getLogger("desktop.dashboard")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PAGE = resource_path("web", "dashboard.html")
ACTIONS = ("pause", "resume", "finish", "stop")
MAX_BODY = 4096


def load_or_create_token(data_dir) -> str:
    """The dashboard's token: kept across restarts (a bookmark keeps working), 0600."""
    token = read_token(data_dir)
    if token is not None:
        return token
    path = token_path(data_dir)
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, token.encode("ascii"))
    return token


class DashboardServer:
    """``views``: label -> PeerView; ``control(label, action, when=, until=)`` pauses (now or
    after the round, until a time or until resumed), resumes, finishes the round and stops, or
    stops now, and returns what it did (a sentence) or raises ValueError."""

    def __init__(self, views: dict[str, PeerView], control: Callable[[str, str], str], *, token: str,
                 bind: str = "127.0.0.1", port: int = 8787, local_names: bool | None = None) -> None:
        """``local_names``: answer only requests addressed to 127.0.0.1 / localhost (default: when
        bound there). A container listens on all its addresses but is published on the host's
        127.0.0.1 only, so its page keeps the loopback rule."""
        self.views, self.control, self.token = views, control, token
        self.bind, self.port = bind, port
        self.local_names = bind in LOOPBACK if local_names is None else local_names
        self.refused = 0
        self.last_read = 0.0  # monotonic time of the last /api/events read (an attached app)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._page = PAGE.read_text(encoding="utf-8")

    # ---- the rules every request meets -----------------------------------------------------------
    def _host_ok(self, request: web.Request) -> bool:
        host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower()
        if self.local_names:
            return host in LOOPBACK
        return True  # bound elsewhere on purpose: the user chose who may reach it

    def _token_ok(self, given: str | None) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if not self._host_ok(request):
            self.refused += 1
            return web.Response(status=421, text="wrong host name")
        given = request.headers.get("X-Dashboard-Token") if request.path.startswith("/api/") \
            else request.query.get("token")
        if not self._token_ok(given):
            self.refused += 1
            return web.Response(status=401, content_type="text/html", text=(
                "<!doctype html><title>RL Swarm</title><p>This dashboard needs its token: open the URL the node "
                "printed when it started (it ends with <code>?token=…</code>). The token is in "
                "<code>&lt;data dir&gt;/dashboard/token</code>; in a container, <code>docker compose exec "
                "&lt;service&gt; rl-swarm health --url</code> prints the whole URL."))
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = ("default-src 'none'; script-src 'unsafe-inline'; "
                                                       "style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
        return response

    # ---- routes ----------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html")

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"peers": [v.to_json() for v in self.views.values()]})

    async def _events(self, request: web.Request) -> web.Response:
        """What an app attached to this node reads: its events since the last ask."""
        view = self.views.get(request.query.get("peer") or next(iter(self.views)))
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            after = -1
        if view is None or after < 0:
            return web.json_response({"error": "a peer of this page and after=N"}, status=400)
        self.last_read = time.monotonic()
        return web.json_response(view.events_after(after))

    async def _control(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1].lower() != (request.host or "").lower():
            self.refused += 1
            return web.json_response({"error": "a command from another site"}, status=403)
        if request.content_type != "application/json":
            return web.json_response({"error": "JSON only"}, status=415)
        raw = await request.content.read(MAX_BODY + 1)
        try:
            body = json.loads(raw) if len(raw) <= MAX_BODY else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("peer") not in self.views or body.get("action") not in ACTIONS:
            return web.json_response({"error": "a peer of this page and one of: " + ", ".join(ACTIONS)}, status=400)
        until, when = body.get("until"), body.get("when", "now")
        if (until is not None and (isinstance(until, bool) or not isinstance(until, (int, float)))) \
                or when not in ("now", "after-round"):
            return web.json_response({"error": "until: epoch seconds or null; when: now or after-round"}, status=400)
        try:
            said = await asyncio.to_thread(self.control, body["peer"], body["action"], when=when, until=until)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"ok": said})

    # ---- life ------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "DashboardServer":
        """Serve from a thread of its own; OSError when the port cannot be had."""
        ready, failed = threading.Event(), []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # the port is taken, the address wrong: tell start()
                failed.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="dashboard", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        if failed:
            raise OSError(f"the dashboard cannot listen on {self.bind}:{self.port}: {failed[0]}")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/control", self._control)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the one chosen when port was 0

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.local_names or self.bind in ("0.0.0.0", "::") else self.bind
        return f"http://{host}:{self.port}/?token={self.token}"

    def how_to_open(self) -> str:
        """Said once when the node starts: where the page is, and how to reach it from elsewhere."""
        return (f"dashboard: {self.url}\n  from another machine: ssh -L {self.port}:127.0.0.1:{self.port} user@this-host, "
                f"then open the same URL there")

    def stop(self, linger: float = 3.0) -> None:
        """Stop serving. An app that read the node's events lately gets up to ``linger`` seconds
        more to read the last ones (the node stopped, and how), then the page goes."""
        if self._loop is None:
            return
        asked = time.monotonic()
        if asked - self.last_read < 5.0:
            while time.monotonic() - asked < linger and self.last_read < asked:
                time.sleep(0.1)

        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        except Exception:  # stopping anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None
