"""Invites to a hosted swarm: the code a host hands out, and the host's book of them.

A code carries what a joiner needs to find the swarm (the chain proxy's URL, chain id, coordinator
address, bootnode multiaddrs, the join endpoint) and a join secret: never a private key. It reads
``rlsw2.<base64url JSON>.<checksum>`` (the checksum: 6 bytes of the JSON's sha256, so a byte changed
in copying is caught, not decoded into something else), or as a link ``rlswarm://join?code=<code>``.
Everything in a code is the host's word: what the joiner's terminal shows of it is plain printable
text (``printable``). The host keeps only a hash of each secret, with an expiry, a use count and the
addresses it funded, in ``<data dir>/host/invites.json``; revoking an invite makes its secret
worthless at once. To be funded a joiner signs ``join_message`` (chain, coordinator, invite, a nonce
from the desk, its address) with its own key. Light (standard library only): the app, the CLI and
the host's join endpoint all use it.
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

from desktop.utils.fsutil import exclusive, write_private

PREFIX = "rlsw2."
OLD_PREFIXES = ("rlsw1.",)
LINK = "rlswarm://join?code="
MAX_CODE = 4096
MAX_BOOTNODES = 8
LATEST_EXPIRY = 253402300799  # 9999-12-31: later than any real invite, earlier than any overflow
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{6,32}$")
_MADDR = re.compile(r"^/[A-Za-z0-9.:/_-]{1,298}$")
_CHECK_BYTES = 6


def printable(text, limit: int = 200) -> str:
    """``text`` as one line of plain characters: terminal escapes, other control characters and
    line breaks from another machine never reach a joiner's terminal or a dialog."""
    text = text if isinstance(text, str) else str(text)
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _checksum(raw: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:_CHECK_BYTES]).decode()


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
        return f"{PREFIX}{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{_checksum(raw)}"

    def link(self) -> str:
        return LINK + self.code()


def _url(value, what: str) -> str:
    parsed = urlparse(value) if isinstance(value, str) else None
    if (parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname or len(value) > 300
            or not value.isprintable() or " " in value):
        raise InviteError(f"this invite's {what} is not a web address")
    return value


def _damaged() -> InviteError:
    return InviteError("this invite code is damaged (copy it again, whole)")


def decode(text: str, now: float | None = None) -> Invite:
    """The invite in a code or link; InviteError (one clear message) for anything else."""
    text = (text or "").strip() if isinstance(text, str) else ""
    if text.startswith("rlswarm:"):
        text = (parse_qs(urlparse(text).query).get("code") or [""])[0]
    if text.startswith(OLD_PREFIXES):
        raise InviteError("this invite was made by an older RL Swarm Desktop; ask the host for a new one")
    if not text.startswith(PREFIX) or len(text) > MAX_CODE:
        raise InviteError(f"this is not an RL Swarm invite code (it starts with {PREFIX})")
    body, _, check = text[len(PREFIX):].partition(".")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise _damaged() from None
    if not hmac.compare_digest(check, _checksum(raw)):
        raise _damaged()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _damaged() from None
    if not isinstance(data, dict):
        raise _damaged()
    try:
        boot = data.get("boot") or []
        if not isinstance(boot, list) or len(boot) > MAX_BOOTNODES or not all(
                isinstance(b, str) and _MADDR.match(b) for b in boot):
            raise InviteError("this invite's bootnodes are not multiaddrs")
        invite = Invite(rpc=_url(data["rpc"], "chain address"), chain_id=int(data["chain_id"]),
                        contract=str(data["contract"]), join=_url(data["join"], "join address"),
                        id=str(data["id"]), secret=str(data["secret"]), expires=int(data["expires"]),
                        boot=tuple(boot), name=printable(data.get("name") or "swarm", 64))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, InviteError):
            raise
        raise InviteError("this invite code is incomplete (copy it again, whole)") from None
    if not _ADDRESS.match(invite.contract) or not _ID.match(invite.id) or not 16 <= len(invite.secret) <= 128:
        raise _damaged()
    if not 0 < invite.chain_id < 2**63 or isinstance(data["chain_id"], bool):
        raise InviteError("this invite names no valid chain")
    if not 0 < invite.expires <= LATEST_EXPIRY:
        raise InviteError("this invite's expiry date is not a date")
    if invite.expires <= (time.time() if now is None else now):
        raise InviteError(f"this invite expired on {when(invite.expires)}; ask the host for a new one")
    return invite


def when(epoch: float) -> str:
    """A date for a person, for any expiry an invite or the book may hold."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(min(max(epoch, 0), LATEST_EXPIRY)))
    except (OverflowError, OSError, ValueError):
        return "an unknown date"


def join_message(chain_id: int, contract: str, invite_id: str, nonce: str, address: str) -> str:
    """What a joiner signs with its account's key (EIP-191) to be funded: the desk learns that the
    address is the joiner's own, for this swarm, this invite and this one request."""
    return (f"Join RL Swarm\nchain: {int(chain_id)}\ncoordinator: {contract.lower()}\ninvite: {invite_id}\n"
            f"nonce: {nonce}\naddress: {address.lower()}")


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
    terminal takes effect on a running host's join endpoint at once; every change is one
    read-modify-write under a lock shared with those commands (``invites.lock``), so a use is taken
    exactly once however many joins arrive together."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "host" / "invites.json"
        self._lock = threading.Lock()

    def _exclusive(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return exclusive(self.path.with_name("invites.lock"))

    def _load(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: Entry(**v) for k, v in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            raise InviteError(f"{self.path} is unreadable ({exc}); no invite can be checked") from None

    def _save(self, entries: dict[str, Entry]) -> None:
        write_private(self.path, json.dumps({k: asdict(v) for k, v in entries.items()}, indent=1).encode())

    def create(self, *, expires_in: float, uses: int) -> tuple[str, str]:
        """A new invite: (id, secret). The secret is shown once, in the code, never stored."""
        if uses < 1 or not 0 < expires_in <= LATEST_EXPIRY - time.time():
            raise InviteError("an invite needs at least one use and a time to expire")
        with self._lock, self._exclusive():
            entries = self._load()
            invite_id, secret = secrets.token_urlsafe(9), secrets.token_urlsafe(24)
            entries[invite_id] = Entry(_digest(secret), int(time.time() + expires_in), uses)
            self._save(entries)
        return invite_id, secret

    def revoke(self, invite_id: str) -> bool:
        with self._lock, self._exclusive():
            entries = self._load()
            if invite_id not in entries:
                return False
            entries[invite_id].revoked = True
            self._save(entries)
            return True

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            return self._load()

    @staticmethod
    def _usable(entries: dict[str, Entry], invite_id, secret) -> Entry:
        if not isinstance(invite_id, str) or not isinstance(secret, str):
            raise InviteError("bad join request")
        entry = entries.get(invite_id)
        if entry is None or not hmac.compare_digest(entry.secret_sha256, _digest(secret)):
            raise InviteError("this invite is not known to the host")
        if entry.revoked:
            raise InviteError("this invite was revoked by the host")
        if entry.expires <= time.time():
            raise InviteError("this invite has expired")
        return entry

    def check(self, invite_id, secret) -> None:
        """InviteError unless the invite is known, its secret right, and it is neither revoked nor
        expired (uses are not looked at: a joiner who joined may ask again, and learn so)."""
        with self._lock:
            self._usable(self._load(), invite_id, secret)

    def redeem(self, invite_id, secret, address) -> bool:
        """Take one use of the invite for ``address``, in one step with recording the address.
        True: the use is taken now (fund it). False: this address already joined through this
        invite (fund nothing: an address is funded once per invite, ever). InviteError says why not."""
        if not _ADDRESS.match(str(address)):
            raise InviteError("bad join request")
        with self._lock, self._exclusive():
            entries = self._load()
            entry = self._usable(entries, invite_id, secret)
            if address.lower() in entry.joined:
                return False
            if entry.uses_left < 1:
                raise InviteError("this invite has been used up")
            entry.uses_left -= 1
            entry.joined.append(address.lower())
            self._save(entries)
            return True

    def release(self, invite_id: str, address: str) -> None:
        """Give back the use ``redeem`` took for ``address`` (its funding failed), so that joiner
        can ask again."""
        with self._lock, self._exclusive():
            entries = self._load()
            entry = entries.get(invite_id)
            if entry is not None and address.lower() in entry.joined:
                entry.joined.remove(address.lower())
                entry.uses_left += 1
                self._save(entries)
