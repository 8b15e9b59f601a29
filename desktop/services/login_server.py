"""The local login server: rl-swarm's ``http://localhost:3000/api/`` on this machine, for local chains.

It binds 127.0.0.1 only. Two kinds of route:

- the sign-in page (``/``, ``/login.js``, ``/style.css``, ``GET /login/status``): no token, loopback
  clients only;
- ``POST /login`` and ``POST /login/logout`` switch the account every node started later uses, so
  besides refusing cross-site requests (JSON content type, own Origin) they need this session's
  secret in ``X-Login-Session`` (the app opens the page as ``/#s=<secret>``; the secret is in
  ``<data>/login/session_secret``, 0600, new at every start) or the API bearer token;
- ``/api/*`` (see :mod:`desktop.services.api`): ``Authorization: Bearer <token>`` with the
  per-install token in ``<data>/login/api_token``.

Every route checks the Host header against our own loopback origin, so a DNS-rebinding page
cannot talk to us through a name that resolves to 127.0.0.1. Whoever can connect can send garbage
before any check: each bad request gets one short log line, at most BAD_LINES_PER_MINUTE a minute.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from aiohttp import ClientPayloadError, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from desktop.utils.logs import redact
from desktop.utils.paths import resource_path

from . import api
from .accounts import AccountLocked, AccountStore, InvalidEmail, write_private
from .chain_writer import ChainWriter

log = logging.getLogger("desktop.services.login")
http_log = logging.getLogger("desktop.services.http")  # aiohttp's protocol errors, kept short
access_log = logging.getLogger("desktop.services.access")

DEFAULT_PORT = 3000
MAX_BODY = 64 * 1024
SECRET_HEADER = "X-Login-Session"
SESSION_SECRET_FILE = "session_secret"  # desktop/gui/shell/main_window.py reads it by this name
BAD_LINES_PER_MINUTE = 20
ACCESS_LINES_PER_MINUTE = 240
MAX_LINE = 300
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
SERVER = web.AppKey("server", object)
WEB_DIR = resource_path("web")
_STATIC = {"/": ("index.html", "text/html"), "/index.html": ("index.html", "text/html"),
           "/login.js": ("login.js", "application/javascript"), "/style.css": ("style.css", "text/css")}
_PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def api_token_path(data_dir: Path) -> Path:
    return Path(data_dir) / "login" / "api_token"


def ensure_api_token(data_dir: Path) -> str:
    """The install's bearer token: created once (32 random bytes, hex, 0600), then reused."""
    path = api_token_path(data_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
        if len(token) == 64 and all(c in "0123456789abcdef" for c in token):
            return token
    except (OSError, UnicodeDecodeError):
        pass
    token = secrets.token_hex(32)
    write_private(path, token.encode("ascii"))
    return token


def session_secret_path(data_dir: Path) -> Path:
    return Path(data_dir) / "login" / SESSION_SECRET_FILE  # rewritten at every start


def _short(text: object, limit: int = 120) -> str:
    """One printable line: control bytes escaped, newlines gone, cut to ``limit``."""
    flat = " ".join(str(text).encode("ascii", "backslashreplace").decode("ascii").split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class _RateLimit:
    """At most ``per_minute`` lines a minute; the rest are counted and reported in one summary."""

    def __init__(self, per_minute: int, what: str):
        self.per_minute, self.what = per_minute, what
        self._lock = threading.Lock()
        self._start, self._count, self._suppressed = time.monotonic(), 0, 0

    def allow(self) -> bool:
        with self._lock:
            if time.monotonic() - self._start >= 60:
                self._report()
            ok = self._count < self.per_minute
            self._count += ok
            self._suppressed += not ok
        return ok

    def flush(self) -> None:
        with self._lock:
            self._report()

    def _report(self) -> None:  # with the lock held; nothing logged here comes back through a limit
        if self._suppressed:
            log.warning("suppressed %d more log lines about %s in the last minute", self._suppressed, self.what)
        self._start, self._count, self._suppressed = time.monotonic(), 0, 0


_BAD = _RateLimit(BAD_LINES_PER_MINUTE, "bad HTTP requests")


class _OneLine(logging.Filter):
    """aiohttp's records made one bounded line: a traceback of a malformed request quotes the
    request's bytes (tens of KB each), and a client must not be able to rotate our logs away."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _BAD.allow():
            return False
        exc = record.exc_info[1] if record.exc_info else None
        text = record.getMessage()
        if exc is not None:
            text += f": {type(exc).__name__}: {_short(exc, 160)}"
        if isinstance(exc, (HttpProcessingError, ConnectionError)) and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"  # the client's fault, not ours
        record.msg, record.args = _short(text, MAX_LINE), ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


_BOUNDED = _OneLine()
for _name in ("aiohttp.server", "aiohttp.web", "aiohttp.access", "desktop.services.http"):
    logging.getLogger(_name).addFilter(_BOUNDED)


class _AccessLog(AbstractAccessLogger):
    """``"METHOD path" status bytes seconds``, the path cut short, at most so many a minute."""

    limit = _RateLimit(ACCESS_LINES_PER_MINUTE, "HTTP requests")

    def log(self, request, response, time: float) -> None:
        # "UNKNOWN": aiohttp's stand-in for a request it could not parse; its error line says it
        if request.method != "UNKNOWN" and self.limit.allow():
            self.logger.info('"%s %s" %s %s %.6fs', _short(request.method, 16), _short(request.rel_url, 120),
                             response.status, response.body_length, time)


def _loopback(remote: str | None) -> bool:
    try:
        return ipaddress.ip_address((remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


class LoginServer:
    def __init__(self, data_dir: Path, rpc_url: str, contract_address: str, *, port: int = DEFAULT_PORT,
                 host: str = "127.0.0.1", funder_key: str | None = None, use_keyring: bool = True,
                 manager_key: str | None = None):
        if host not in ALLOWED_HOSTS:
            raise ValueError(f"the login server only listens on 127.0.0.1, not {host!r}: it signs "
                             "transactions for whoever can reach it")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"bad port {port}")
        self.data_dir = Path(data_dir)
        self.rpc_url, self.contract_address = rpc_url, contract_address
        self.store = AccountStore(self.data_dir, use_keyring=use_keyring)
        self._requested_port = int(port)
        self._funder_key = funder_key
        self._manager_key = manager_key
        self.port: int | None = None
        self._token: str | None = None
        self.session_secret: str | None = None
        self._runner: web.AppRunner | None = None
        self._writer: ChainWriter | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- facts for clients ----
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the login server is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_token_file(self) -> Path:
        return api_token_path(self.data_dir)

    @property
    def session_secret_file(self) -> Path:
        return session_secret_path(self.data_dir)

    @property
    def api_token(self) -> str:
        return self._token or ensure_api_token(self.data_dir)

    def _own_hosts(self) -> set[str]:
        return {f"{h}:{self.port}" for h in ALLOWED_HOSTS}

    def _own_origins(self) -> set[str]:
        return {f"http://{h}" for h in self._own_hosts()}

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        ok_scheme = scheme.lower() == "bearer"
        # Compare even on a bad scheme so timing says nothing about the token.
        same = hmac.compare_digest(value.strip().encode("utf-8", "replace"), (self._token or "").encode())
        return ok_scheme and same and bool(self._token)

    def _may_switch_account(self, request: web.Request) -> bool:
        """The app's own page (this session's secret) or a holder of the API token."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        page = hmac.compare_digest(given, (self.session_secret or "").encode())
        return (page and bool(self.session_secret)) or self._authorized(request.headers.get("Authorization", ""))

    # ---- lifecycle ----
    async def start(self) -> "LoginServer":
        if self._runner is not None:
            raise RuntimeError("already started")
        self._token = ensure_api_token(self.data_dir)
        self.session_secret = secrets.token_urlsafe(32)
        write_private(self.session_secret_file, self.session_secret.encode("ascii"))
        self._writer = ChainWriter(self.rpc_url, self.contract_address, funder_key=self._funder_key)
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app[SERVER] = self
        app[api.STORE] = self.store
        app[api.WRITER] = self._writer
        if self._manager_key:
            app[api.MANAGER_KEY] = self._manager_key
        for path in _STATIC:
            app.router.add_get(path, self._static)
        app.router.add_post("/login", self._sign_in)
        app.router.add_get("/login/status", self._status)
        app.router.add_post("/login/logout", self._sign_out)
        api.add_routes(app)
        runner = web.AppRunner(app, access_log=access_log, access_log_class=_AccessLog, logger=http_log)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._writer.close()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("login server on %s (token in %s)", self.url, self.api_token_file)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        _BAD.flush()

    async def __aenter__(self) -> "LoginServer":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def run_in_thread(self, timeout: float = 20.0) -> "LoginServer":
        """Serve from a daemon thread with its own event loop (tests, the Qt app's process)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=main, name="login-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the login server did not start in time")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 20.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join(timeout)

    # ---- middleware: host, client, token, size, and no traceback ever reaches the client ----
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        try:
            if not _loopback(request.remote) or request.host.lower() not in self._own_hosts():
                return api.json_error(403, "forbidden")
            if request.path.startswith("/api/") and not self._authorized(request.headers.get("Authorization", "")):
                return api.json_error(401, "unauthorized")
            if (request.content_length or 0) > MAX_BODY:
                return api.json_error(413, "request too large")
            return await handler(request)
        except api.BadRequest as exc:
            return api.json_error(400, "bad request", detail=exc.detail)
        except api.UserNotFound:
            return api.json_error(404, "user not found")
        except web.HTTPRequestEntityTooLarge:
            return api.json_error(413, "request too large")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return api.json_error(exc.status, (exc.reason or "error").lower())
        except asyncio.CancelledError:
            raise
        except (HttpProcessingError, ClientPayloadError, ConnectionError) as exc:
            # A broken body (bad chunked encoding, a client that hung up): the client's doing.
            if _BAD.allow():
                log.info(_short(f"bad request {request.method} {request.path}: {type(exc).__name__}: {exc}",
                                MAX_LINE))
            return api.json_error(400, "bad request")
        except Exception:
            if _BAD.allow():  # our bug, so a traceback; but a client could repeat it at will
                log.error("%s %s failed: %s", _short(request.method, 16), _short(request.path),
                          redact(traceback.format_exc())[-4000:])
            return api.json_error(500, "internal error")

    # ---- the sign-in page ----
    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = _STATIC[request.path]
        body = await asyncio.to_thread((WEB_DIR / name).read_bytes)
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=_PAGE_HEADERS)

    def _cross_site(self, request: web.Request) -> web.Response | None:
        """Refuse form posts and other sites' scripts: a JSON POST from our own origin only."""
        if request.content_type != "application/json":
            return api.json_error(415, "content type must be application/json")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in self._own_origins():
            return api.json_error(403, "forbidden origin")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return api.json_error(403, "forbidden origin")
        return None

    def _refused(self, request: web.Request) -> web.Response | None:
        """Why a POST that switches the account is refused (None: it is not)."""
        if (refused := self._cross_site(request)) is not None:
            return refused
        if not self._may_switch_account(request):
            return api.json_error(403, "forbidden", detail="sign in from the RL Swarm app's own sign-in page")
        return None

    async def _sign_in(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await api.read_json(request)
        try:
            account, created = await asyncio.to_thread(self.store.sign_in, body.get("email"))
        except InvalidEmail as exc:
            return api.json_error(400, "invalid email", detail=str(exc))
        except AccountLocked:
            return api.json_error(409, "account locked",
                                  detail="the key store no longer holds this account's secret")
        funded = False
        try:  # gas money on a local chain; sign-in still works when the chain is down
            funded = await self._writer.ensure_funded(account.address)
        except Exception as exc:
            log.warning("could not fund %s: %s", account.address, redact(str(exc))[:300])
        log.info("signed in %s (%s)", account.org_id, "new account" if created else "existing account")
        info = await api.session_info(self.store) or {}
        return web.json_response({"signedIn": True, "created": created, "funded": funded, **info})

    async def _status(self, request: web.Request) -> web.Response:
        info = await api.session_info(self.store)
        return web.json_response({"signedIn": info is not None, **(info or {})},
                                 headers={"Cache-Control": "no-store"})

    async def _sign_out(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return web.json_response({"signedOut": await asyncio.to_thread(self.store.sign_out)})


async def serve(data_dir: Path, rpc_url: str, contract_address: str, *, port: int = DEFAULT_PORT,
                funder_key: str | None = None, use_keyring: bool = True,
                ready: Callable[[LoginServer], None] | None = None) -> None:
    """Run the login server until cancelled; ``ready(server)`` is called once it listens."""
    server = LoginServer(data_dir, rpc_url, contract_address, port=port, funder_key=funder_key,
                         use_keyring=use_keyring)
    await server.start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await server.stop()
