"""Is there a newer release? A JSON feed, checked at most once a day and never when turned off;
the app then says "version X is available" with the notes and a download button. Nothing is
installed without the user: a download is checked against the feed's sha256 and left for them.

The feed (``updates.feed_url`` in the config):

    {"version": "0.2.0", "notes": "What changed",
     "artifacts": {"linux-deb": {"url": "https://…/rl-swarm-desktop_0.2.0_amd64.deb", "sha256": "…",
                                 "size": 399000000},
                   "linux-tarball": {…}, "macos": {…}, "windows": {…}}}

A feed that is garbage, too big, names no artifact for this platform, or is not newer is ignored
with a log line. The feed and the artifact are another machine's word: a URL is https (plain http
only to this machine itself, for tests), the check and the download each finish within an
overall deadline however slowly the server trickles, the download stops at the feed's size, and
its file lands in the downloads folder under a plain name, never elsewhere. Standard library
only: the GUI runs the check in a worker thread.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

CHECK_EVERY_S = 24 * 3600
MAX_FEED_BYTES = 64 * 1024
TIMEOUT_S = 10                # one connect or one read
CHECK_DEADLINE_S = 20.0       # the whole check: connect, headers, body
DOWNLOAD_DEADLINE_S = 3600.0  # the whole download
MAX_ARTIFACT_BYTES = 4 << 30
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,4})\.(\d{1,4})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UpdateError(Exception):
    """A download that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class Update:
    version: str
    notes: str
    url: str
    sha256: str
    size: int  # bytes, from the feed: the download stops there


def acceptable_url(url: object) -> bool:
    """https anywhere, or plain http to this machine itself (a test feed); never a user name in
    the address (``http://127.0.0.1@evil.example/`` goes to evil.example)."""
    if not isinstance(url, str) or len(url) > 2000 or not url.isprintable() or " " in url:
        return False
    try:
        parsed = urlparse(url)
        host = parsed.hostname
        parsed.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return False
    if not host or "@" in parsed.netloc:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def platform_key() -> str:
    """Which artifact of the feed this installation takes."""
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux-deb" if Path("/opt/rl-swarm-desktop").resolve() in Path(sys.executable).resolve().parents \
        else "linux-tarball"


def parse_version(text: object) -> tuple[int, int, int] | None:
    match = _VERSION.match(text) if isinstance(text, str) else None
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def parse_feed(raw: bytes, current: str, platform: str) -> Update | None:
    """The update the feed offers this installation, or None (with the reason logged)."""
    try:
        feed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("update feed: not JSON; ignored")
        return None
    if not isinstance(feed, dict):
        log.warning("update feed: not a JSON object; ignored")
        return None
    offered, mine = parse_version(feed.get("version")), parse_version(current)
    if offered is None or mine is None:
        log.warning("update feed: version %r is not X.Y.Z; ignored", str(feed.get("version"))[:40])
        return None
    if offered <= mine:
        log.info("update feed: %s is not newer than %s", feed["version"], current)
        return None
    artifact = (feed.get("artifacts") or {}).get(platform) if isinstance(feed.get("artifacts"), dict) else None
    if not isinstance(artifact, dict):
        log.warning("update feed: %s has no %s artifact; ignored", feed["version"], platform)
        return None
    url, sha, size = artifact.get("url"), artifact.get("sha256"), artifact.get("size")
    if not acceptable_url(url):
        log.warning("update feed: the %s artifact's url is not https; ignored", platform)
        return None
    if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
        log.warning("update feed: the %s artifact has no valid sha256; ignored", platform)
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ARTIFACT_BYTES:
        log.warning("update feed: the %s artifact has no valid size; ignored", platform)
        return None
    notes = feed.get("notes") if isinstance(feed.get("notes"), str) else ""
    return Update(version=feed["version"], notes=notes[:2000], url=url, sha256=sha.lower(), size=size)


class _Deadline(Exception):
    pass


class _Watchdog:
    """Shuts the request's sockets at the deadline, so nothing (a connect, headers or a body sent
    a byte at a time) outlives it; ``expired`` says whether it fired."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self._socks: list = []
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def watch(self, sock) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _fetch(url: str, watchdog: _Watchdog, timeout: float = TIMEOUT_S):
    """Open ``url`` under ``watchdog``; redirects are followed only to URLs ``acceptable_url`` takes."""
    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not acceptable_url(newurl):
                raise urllib.error.URLError(f"redirected to a refused address {newurl[:100]!r}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    class Http(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    class Handler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
        def http_open(self, req):
            return self.do_open(Http, req)

        def https_open(self, req):
            return self.do_open(Https, req, context=ssl.create_default_context())

    proxies = urllib.request.ProxyHandler({} if _is_loopback(urlparse(url).hostname or "") else None)
    opener = urllib.request.build_opener(proxies, Redirects, Handler)
    return opener.open(urllib.request.Request(url, headers={"User-Agent": "rl-swarm-desktop"}), timeout=timeout)


def _chunks(reply, limit: int, watchdog: _Watchdog, size: int = 1 << 16):
    """The body in pieces, never more than ``limit`` + 1 bytes (the caller judges the extra one)."""
    got = 0
    while got <= limit:
        chunk = reply.read1(min(size, limit + 1 - got)) if hasattr(reply, "read1") else reply.read(size)
        if watchdog.expired:
            raise _Deadline()
        if not chunk:
            return
        got += len(chunk)
        yield chunk


def _get(url: str, limit: int, seconds: float, timeout: float = TIMEOUT_S, sink=None) -> tuple[bytes, int]:
    """(body, Content-Length) of ``url``, at most ``limit`` + 1 bytes, all within ``seconds``;
    with ``sink`` the body goes there chunk by chunk instead (and b"" is returned). Raises
    _Deadline, or OSError / ValueError / http.client.HTTPException for an unreachable server."""
    with _Watchdog(seconds) as watchdog:
        try:
            with _fetch(url, watchdog, timeout) as reply:
                total = int(reply.headers.get("Content-Length") or 0)
                if sink is None:
                    return b"".join(_chunks(reply, limit, watchdog)), total
                for chunk in _chunks(reply, limit, watchdog, 1 << 20):
                    sink(chunk, total)
                return b"", total
        except (OSError, ValueError, http.client.HTTPException):
            if watchdog.expired:
                raise _Deadline() from None
            raise


def check(feed_url: str | None, current: str, state_file: Path, *, enabled: bool = True,
          platform: str | None = None, now: float | None = None) -> Update | None:
    """At most one request a day (the time of the last one is kept in ``state_file``); none at
    all when turned off or without a feed. Never raises: an unreachable feed is a log line."""
    if not enabled or not feed_url:
        return None
    now = time.time() if now is None else now
    try:
        last = float(json.loads(state_file.read_text(encoding="utf-8"))["checked_at"])
    except (OSError, ValueError, KeyError, TypeError):
        last = 0.0
    if 0 <= now - last < CHECK_EVERY_S:
        return None
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"checked_at": now}), encoding="utf-8")
    except OSError as exc:
        log.warning("update check: cannot record the time of this check (%s)", exc)
    if not acceptable_url(feed_url):
        log.warning("update check: the feed's address is not https; not asked")
        return None
    try:
        raw, _ = _get(feed_url, MAX_FEED_BYTES, CHECK_DEADLINE_S)
    except _Deadline:
        log.info("update check: the feed did not arrive within %.0f s; ignored", CHECK_DEADLINE_S)
        return None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        log.info("update check: feed unreachable (%s)", exc)
        return None
    if len(raw) > MAX_FEED_BYTES:
        log.warning("update feed: larger than %d KiB; ignored", MAX_FEED_BYTES >> 10)
        return None
    return parse_feed(raw, current, platform or platform_key())


def file_name(update: Update) -> str:
    """The artifact's name from its URL's last segment when that is a plain file name, else one of
    ours: never a path, never a dot-name, so the file cannot land outside the downloads folder."""
    name = PurePosixPath(unquote(urlparse(update.url).path)).name
    return name if _NAME.match(name) and not name.endswith(".part") else f"rl-swarm-desktop-{update.version}"


def download(update: Update, folder: Path, progress=None, *, deadline_s: float = DOWNLOAD_DEADLINE_S) -> Path:
    """Fetch the artifact into ``folder`` and check its size and sha256; anything wrong raises
    UpdateError (said for the user) and leaves no file."""
    folder = Path(folder)
    target = folder / file_name(update)
    partial = target.with_name(target.name + ".part")
    if target.parent != folder:
        raise UpdateError("the update's file name is not usable")
    digest, done = hashlib.sha256(), 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            def take(chunk: bytes, total: int) -> None:
                nonlocal done
                done += len(chunk)
                if done > update.size or total > update.size:
                    raise UpdateError(f"the download of {update.version} is larger than the feed says: not kept")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, total)
            _get(update.url, update.size, deadline_s, timeout=60, sink=take)
    except UpdateError:
        partial.unlink(missing_ok=True)
        raise
    except _Deadline:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the download of {update.version} took longer than {deadline_s / 60:.0f} min: "
                          "not kept; try again later") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the download of {update.version} failed: {exc}") from None
    if digest.hexdigest() != update.sha256:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the download of {update.version} does not match the feed's sha256: not kept")
    partial.replace(target)
    return target
