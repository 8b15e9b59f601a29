"""Backups of swarm.pem: export (plain or passphrase-encrypted), inspect and import.

Losing swarm.pem loses the peer's name and its on-chain history, so the app offers a backup
early and makes restoring one safe: a backup is fully validated (decrypted and decoded) before
anything on disk changes, and the key it replaces is kept as a dated ``.bak``, never deleted.

Encrypted container (version 1)::

    RLSWARM-BACKUP-1\\n
    {"version": 1, "kdf": {"name": "scrypt", "n": .., "r": .., "p": .., "salt": b64},
     "cipher": "AES-256-GCM", "nonce": b64, "ciphertext": b64}

The ciphertext is AES-256-GCM over the exact swarm.pem bytes, with the magic line as associated
data. No Qt here: the GUI and the CLI share it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from desktop.utils.fsutil import FileTooLarge, read_bounded, write_private

from .keyfile import IdentityError, write_new_key_file, decode_keyfile, load_identity
from .names import peer_name
from .peerid import peer_id_from_public_key

MAGIC = b"RLSWARM-BACKUP-1\n"
# scrypt n=2^15, r=8 costs ~32 MiB and ~0.1 s: cheap for one export, slow for guessing.
# A container names its own scrypt cost, but we only ever write these: anything else is refused
# before deriving, so a crafted header cannot cost gigabytes of memory and minutes of CPU.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
MAX_BACKUP_BYTES = 256 * 1024


class BackupError(Exception):
    """A backup that cannot be written, read, decrypted or used; the message is for the user."""


class PassphraseRequired(BackupError):
    """The backup is encrypted and no passphrase was given (the UI should ask for one)."""


@dataclass(frozen=True)
class BackupInfo:
    peer_id: str
    name: str
    encrypted: bool


@dataclass(frozen=True)
class ImportResult:
    peer_id: str
    name: str
    previous_backup: Path | None  # where the replaced key went; None if nothing was replaced
    changed: bool = True  # False: the backup holds the key already in use, nothing was done
    message: str = ""


# --- container ---------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (ValueError, TypeError):
        raise BackupError(f"The backup is damaged: its {what} is not valid base64.") from None


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def encrypt_keyfile(data: bytes, passphrase: str) -> bytes:
    """The encrypted container for swarm.pem bytes ``data``."""
    if not passphrase:
        raise BackupError("An encrypted backup needs a non-empty passphrase.")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    body = {
        "version": 1,
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "cipher": "AES-256-GCM",
        "nonce": _b64(nonce),
        "ciphertext": _b64(AESGCM(key).encrypt(nonce, data, MAGIC)),
    }
    return MAGIC + json.dumps(body, indent=1).encode("ascii") + b"\n"


def decrypt_container(blob: bytes, passphrase: str) -> bytes:
    """The swarm.pem bytes inside an encrypted container, or BackupError saying why not."""
    try:
        body = json.loads(blob[len(MAGIC):].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BackupError("The backup is damaged: its header is unreadable.") from None
    if not isinstance(body, dict) or body.get("version") != 1:
        raise BackupError("The backup was written by a newer or unknown version of the app.")
    kdf = body.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt" or body.get("cipher") != "AES-256-GCM":
        raise BackupError("The backup uses an unknown encryption scheme.")
    params = tuple(kdf.get(k) for k in ("n", "r", "p"))
    if any(v is None for v in params):
        raise BackupError("The backup is damaged: its key-derivation settings are missing.")
    if params != (SCRYPT_N, SCRYPT_R, SCRYPT_P) or any(type(v) is not int for v in params):
        shown = ", ".join(f"{k}={str(v)[:20]}" for k, v in zip("nrp", params))
        raise BackupError(f"The backup asks for key-derivation settings this app never writes "
                          f"(scrypt {shown}; expected n={SCRYPT_N}, r={SCRYPT_R}, p={SCRYPT_P}): "
                          f"refused without trying them.")
    n, r, p = params
    salt = _unb64(kdf.get("salt"), "salt")
    nonce = _unb64(body.get("nonce"), "nonce")
    ciphertext = _unb64(body.get("ciphertext"), "ciphertext")
    if len(nonce) != 12 or len(salt) < 8:
        raise BackupError("The backup is damaged: bad nonce or salt.")
    try:
        return AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, ciphertext, MAGIC)
    except InvalidTag:
        # GCM cannot tell a wrong passphrase from flipped bits; say both.
        raise BackupError("Wrong passphrase, or the backup file is damaged.") from None


# --- reading -----------------------------------------------------------------------------

def _read(path: Path) -> bytes:
    try:
        return read_bounded(path, MAX_BACKUP_BYTES)
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise BackupError(f"{path} is a folder, not a backup file.") from None
    except FileTooLarge:
        raise BackupError(f"{path} is far too large to be a swarm.pem backup.") from None
    except OSError as exc:
        raise BackupError(f"{path} cannot be read: {exc.strerror or exc}.") from None


def is_encrypted(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like an encrypted backup (so the UI asks for a passphrase)."""
    return _read(Path(path)).startswith(MAGIC)


def _open_backup(path: Path, passphrase: str | None) -> tuple[bytes, BackupInfo]:
    """(swarm.pem bytes, info) of a backup, fully validated."""
    blob = _read(path)
    encrypted = blob.startswith(MAGIC)
    if encrypted:
        if not passphrase:
            raise PassphraseRequired(f"{path.name} is encrypted: enter its passphrase.")
        data = decrypt_container(blob, passphrase)
    else:
        data = blob
    try:
        key = decode_keyfile(data, path)
    except IdentityError as exc:
        raise BackupError(f"Not a usable swarm key: {exc}") from None
    peer_id = peer_id_from_public_key(key.public_key())
    return data, BackupInfo(peer_id=peer_id, name=peer_name(peer_id), encrypted=encrypted)


def inspect_backup(path: str | os.PathLike, passphrase: str | None = None) -> BackupInfo:
    """Validate a backup (decrypting it if needed) and say whose key it holds. Changes nothing."""
    return _open_backup(Path(path), passphrase)[1]


# --- writing -----------------------------------------------------------------------------

def export_backup(identity_path: str | os.PathLike, dest: str | os.PathLike,
                  passphrase: str | None = None) -> Path:
    """Write a backup of ``identity_path`` to ``dest`` (owner-only, 0600).

    ``passphrase`` None: an exact copy, usable as swarm.pem as is. Otherwise the encrypted
    container. The result is read back and checked before returning.
    """
    identity_path, dest = Path(identity_path), Path(dest)
    try:
        load_identity(identity_path)  # never back up something that is not a key
    except IdentityError as exc:
        raise BackupError(str(exc)) from None
    if dest.exists() and dest.resolve() == identity_path.resolve():
        raise BackupError("Choose a different place: that is the key file itself.")
    data = identity_path.read_bytes()
    blob = data if passphrase is None else encrypt_keyfile(data, passphrase)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_private(dest, blob)
    except OSError as exc:
        raise BackupError(f"Cannot write {dest}: {exc.strerror or exc}.") from None
    if _open_backup(dest, passphrase)[0] != data:  # paranoid: a backup must restore exactly
        raise BackupError(f"The backup written to {dest} does not read back correctly.")
    return dest


def dated_backup_path(identity_path: Path, now: datetime | None = None) -> Path:
    """``swarm.pem.2026-11-26T08-40-00.bak`` next to the key; a suffix keeps it unique."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")
    candidate = identity_path.with_name(f"{identity_path.name}.{stamp}.bak")
    n = 1
    while os.path.lexists(candidate):
        candidate = identity_path.with_name(f"{identity_path.name}.{stamp}-{n}.bak")
        n += 1
    return candidate


def import_backup(path: str | os.PathLike, identity_path: str | os.PathLike,
                  passphrase: str | None = None, now: datetime | None = None) -> ImportResult:
    """Make the backup at ``path`` the identity at ``identity_path``.

    Validates first (a bad backup changes nothing). The current key, if any, is renamed to a
    dated ``.bak`` next to it; the new key is written atomically, read-only (0400). If the
    backup holds the key already in use, nothing happens (``changed`` is False).
    """
    path, identity_path = Path(path), Path(identity_path)
    data, info = _open_backup(path, passphrase)
    if os.path.lexists(identity_path):
        try:
            current = load_identity(identity_path)
        except IdentityError:
            current = None  # a broken key is still kept as a .bak below, never dropped
        if current is not None and current.peer_id == info.peer_id:
            return ImportResult(info.peer_id, info.name, None, changed=False,
                                message=f"This backup is the identity already in use ({info.name}).")
        previous: Path | None = dated_backup_path(identity_path, now)
        try:
            os.rename(identity_path, previous)
        except OSError as exc:
            raise BackupError(f"Cannot move the current key aside: {exc.strerror or exc}.") from None
    else:
        previous = None
        identity_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        write_new_key_file(identity_path, data)
    except OSError as exc:
        if previous is not None and not os.path.lexists(identity_path):
            os.rename(previous, identity_path)  # put the old key back: never leave no key
        raise BackupError(f"Cannot write {identity_path}: {exc.strerror or exc}.") from None
    kept = f"; the previous key is kept as {previous.name}" if previous else ""
    return ImportResult(info.peer_id, info.name, previous, changed=True,
                        message=f"Now using the identity of {info.name}{kept}.")
