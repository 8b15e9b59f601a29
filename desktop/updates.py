"""Is there a newer release? A JSON feed, checked at most once a day and never when turned off;
the app then says "version X is available" with the notes and a download button. Nothing is
installed without the user: a download is checked against the feed's sha256 and left for them.

The feed (``updates.feed_url`` in the config):

    {"version": "0.2.0", "notes": "What changed",
     "artifacts": {"linux-deb": {"url": "https://…/rl-swarm-desktop_0.2.0_amd64.deb", "sha256": "…"},
                   "linux-tarball": {…}, "macos": {…}, "windows": {…}}}

A feed that is garbage, too big, names no artifact for this platform, or is not newer is ignored
with a log line. Standard library only: the GUI runs the check in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_EVERY_S = 24 * 3600
MAX_FEED_BYTES = 64 * 1024
TIMEOUT_S = 10
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
    url, sha = artifact.get("url"), artifact.get("sha256")
    if not isinstance(url, str) or not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        log.warning("update feed: the %s artifact's url is not https; ignored", platform)
        return None
    if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
        log.warning("update feed: the %s artifact has no valid sha256; ignored", platform)
        return None
    notes = feed.get("notes") if isinstance(feed.get("notes"), str) else ""
    return Update(version=feed["version"], notes=notes[:2000], url=url, sha256=sha.lower())


def _fetch(url: str, limit: int, timeout: float = TIMEOUT_S):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}) if "127.0.0.1" in url else
                                         urllib.request.ProxyHandler())
    return opener.open(urllib.request.Request(url, headers={"User-Agent": "rl-swarm-desktop"}), timeout=timeout)


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
    try:
        with _fetch(feed_url, MAX_FEED_BYTES) as reply:
            raw = reply.read(MAX_FEED_BYTES + 1)
    except (OSError, ValueError) as exc:
        log.info("update check: feed unreachable (%s)", exc)
        return None
    if len(raw) > MAX_FEED_BYTES:
        log.warning("update feed: larger than %d KiB; ignored", MAX_FEED_BYTES >> 10)
        return None
    return parse_feed(raw, current, platform or platform_key())


def download(update: Update, folder: Path, progress=None) -> Path:
    """Fetch the artifact into ``folder`` and check its sha256; a mismatch leaves no file."""
    name = os.path.basename(update.url.split("?", 1)[0]) or f"rl-swarm-desktop-{update.version}"
    target = Path(folder) / name
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _fetch(update.url, 0, timeout=60) as reply, open(partial, "wb") as out:
            total = int(reply.headers.get("Content-Length") or 0)
            done = 0
            while chunk := reply.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the download of {update.version} failed: {exc}") from None
    if digest.hexdigest() != update.sha256:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the download of {update.version} does not match the feed's sha256: not kept")
    partial.replace(target)
    return target
