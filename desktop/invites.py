"""Invites to a hosted swarm: the code a host hands out, and the host's book of them.

A code carries what a joiner needs to find the swarm (the chain proxy's URL, chain id, coordinator
address, bootnode multiaddrs, the join endpoint) and a join secret: never a private key. It reads
``rlsw1.<base64url JSON>``, or as a link ``rlswarm://join?code=<code>``. The host keeps only a hash
of each secret, with an expiry and a use count, in ``<data dir>/host/invites.json``; revoking an
invite makes its secret worthless at once. Light (standard library only): the app, the CLI and the
host's join endpoint all use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from desktop.fsutil import write_private

PREFIX = "rlsw1."
LINK = "rlswarm://join?code="
MAX_CODE = 4096
MAX_BOOTNODES = 8
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{6,32}$")


class InviteError(ValueError):
    """A code or a redemption that cannot be used; the message is for the joiner."""


@dataclass(frozen=True)
class Invite:
    rpc: str                # the host's chain proxy
    chain_id: int
    contract: str
    join: str               # the host's join endpoint
    id: str
    secret: str
    expires: int            # epoch seconds
    boot: tuple[str, ...] = ()
    name: str = "swarm"

    def code(self) -> str:
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def link(self) -> str:
        return LINK + self.code()


def _url(value, what: str) -> str:
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname or len(value) > 300:
        raise InviteError(f"this invite's {what} is not a web address")
    return value


def decode(text: str, now: float | None = None) -> Invite:
    """The invite in a code or link; InviteError (one clear message) for anything else."""
    text = (text or "").strip()
    if text.startswith("rlswarm:"):
        text = (parse_qs(urlparse(text).query).get("code") or [""])[0]
    if not text.startswith(PREFIX) or len(text) > MAX_CODE:
        raise InviteError("this is not an RL Swarm invite code (it starts with rlsw1.)")
    body = text[len(PREFIX):]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InviteError("this invite code is damaged (copy it again, whole)") from None
    if not isinstance(data, dict):
        raise InviteError("this invite code is damaged (copy it again, whole)")
    try:
        boot = data.get("boot") or []
        if not isinstance(boot, list) or len(boot) > MAX_BOOTNODES or not all(
                isinstance(b, str) and b.startswith("/") and len(b) < 300 for b in boot):
            raise InviteError("this invite's bootnodes are not multiaddrs")
        invite = Invite(rpc=_url(data["rpc"], "chain address"), chain_id=int(data["chain_id"]),
                        contract=str(data["contract"]), join=_url(data["join"], "join address"),
                        id=str(data["id"]), secret=str(data["secret"]), expires=int(data["expires"]),
                        boot=tuple(boot), name=str(data.get("name") or "swarm")[:64])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InviteError):
            raise
        raise InviteError("this invite code is incomplete (copy it again, whole)") from None
    if not _ADDRESS.match(invite.contract) or not _ID.match(invite.id) or not 16 <= len(invite.secret) <= 128:
        raise InviteError("this invite code is damaged (copy it again, whole)")
    if not 0 < invite.chain_id < 2**63:
        raise InviteError("this invite names no valid chain")
    if invite.expires <= (time.time() if now is None else now):
        raise InviteError(f"this invite expired on {time.strftime('%Y-%m-%d %H:%M', time.localtime(invite.expires))}; "
                          "ask the host for a new one")
    return invite


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Entry:
    secret_sha256: str
    expires: int
    uses_left: int
    revoked: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    joined: list = field(default_factory=list)  # addresses funded through it


class InviteBook:
    """The host's invites on disk. Every call re-reads the file, so `rl-swarm host revoke` in a
    terminal takes effect on a running host's join endpoint at once."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "host" / "invites.json"
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: Entry(**v) for k, v in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            raise InviteError(f"{self.path} is unreadable ({exc}); no invite can be checked") from None

    def _save(self, entries: dict[str, Entry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps({k: asdict(v) for k, v in entries.items()}, indent=1).encode())

    def create(self, *, expires_in: float, uses: int) -> tuple[str, str]:
        """A new invite: (id, secret). The secret is shown once, in the code, never stored."""
        if uses < 1 or expires_in <= 0:
            raise InviteError("an invite needs at least one use and a time to expire")
        with self._lock:
            entries = self._load()
            invite_id, secret = secrets.token_urlsafe(9), secrets.token_urlsafe(24)
            entries[invite_id] = Entry(_digest(secret), int(time.time() + expires_in), uses)
            self._save(entries)
        return invite_id, secret

    def revoke(self, invite_id: str) -> bool:
        with self._lock:
            entries = self._load()
            if invite_id not in entries:
                return False
            entries[invite_id].revoked = True
            self._save(entries)
            return True

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            return self._load()

    def redeem(self, invite_id: str, secret: str, address: str) -> None:
        """Use the invite once for ``address``; InviteError says why not. The same address again is
        not a second use (a joiner whose first answer got lost may ask again)."""
        if not isinstance(invite_id, str) or not isinstance(secret, str) or not _ADDRESS.match(str(address)):
            raise InviteError("bad join request")
        with self._lock:
            entries = self._load()
            entry = entries.get(invite_id)
            if entry is None or not hmac.compare_digest(entry.secret_sha256, _digest(secret)):
                raise InviteError("this invite is not known to the host")
            if entry.revoked:
                raise InviteError("this invite was revoked by the host")
            if entry.expires <= time.time():
                raise InviteError("this invite has expired")
            if address.lower() in entry.joined:
                return
            if entry.uses_left < 1:
                raise InviteError("this invite has been used up")
            entry.uses_left -= 1
            entry.joined.append(address.lower())
            self._save(entries)
