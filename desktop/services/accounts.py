"""Local accounts for the login server: one EOA per email, its key encrypted at rest.

Layout under the data dir (directories 0700, files 0600, every write atomic):

- ``accounts/<sha256(email)>.json``: org id, user id, address, linked peer ids and the private key
  encrypted with AES-256-GCM under a random 32-byte secret.
- the secret sits in the OS keyring (service ``rl-swarm-desktop``, user ``account:<orgId>``), or,
  where there is no usable keyring (headless Linux), in ``secrets/<orgId>.key``. The account file
  records which (``secret_store``). The keyring user is the random org id, not the email, so two data
  dirs that sign in with the same email never overwrite each other's secret.
- ``login/userData.json`` (the signed-in account only, like rl-swarm; its presence is the session, so
  a restart keeps the user signed in) and ``login/userApiKey.json`` (the address as ``publicKey``;
  the private key is never written there).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from desktop.chain.profiles import read_user_data, user_data_path
from desktop.utils import fsutil

KEYRING_SERVICE = "rl-swarm-desktop"
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_ORG_ID = re.compile(r"^[0-9a-f]{32}$")


class AccountError(Exception):
    """Base for account failures the server maps to a client error."""


class InvalidEmail(AccountError, ValueError):
    pass


class UnknownAccount(AccountError, KeyError):
    pass


class AccountLocked(AccountError):
    """The account's secret is gone (keyring entry or key file deleted): the key cannot be read."""


@dataclass(frozen=True)
class Account:
    org_id: str
    address: str
    email: str
    user_id: str
    created_at: float = 0.0
    secret_store: str = "file"

    def public(self) -> dict[str, Any]:
        """The rl-swarm ``userData.json`` entry (camelCase)."""
        return {"orgId": self.org_id, "address": self.address, "userId": self.user_id, "email": self.email}


def normalize_email(email: Any) -> str:
    if not isinstance(email, str):
        raise InvalidEmail("email must be a string")
    email = email.strip().lower()
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise InvalidEmail("not a valid email address")
    return email


def valid_org_id(org_id: Any) -> bool:
    return isinstance(org_id, str) and bool(_ORG_ID.match(org_id))


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:  # e.g. a filesystem without POSIX modes; the file modes still apply where they can
        pass
    return path


def write_private(path: Path, data: bytes) -> None:
    """Owner-only atomic write into an owner-only directory."""
    _private_dir(path.parent)
    fsutil.write_private(path, data)


def _write_json(path: Path, obj: Any) -> None:
    write_private(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


class SecretStore:
    """Keeps each account's 32-byte secret in the OS keyring, or in an owner-only file without one."""

    def __init__(self, secrets_dir: Path, use_keyring: bool = True):
        self.dir = secrets_dir
        self.use_keyring = use_keyring

    def put(self, key_id: str, secret: bytes) -> str:
        """Store ``secret``; returns ``"keyring"`` or ``"file"``."""
        if self.use_keyring and self._keyring_put(key_id, secret.hex()):
            return "keyring"
        write_private(self.dir / f"{key_id}.key", secret.hex().encode("ascii"))
        return "file"

    def get(self, key_id: str, store: str) -> bytes:
        text = None
        if store == "keyring":
            try:
                import keyring  # its backends probe D-Bus and the OS store: only when one is used

                text = keyring.get_password(KEYRING_SERVICE, f"account:{key_id}")
            except Exception:  # no backend now (e.g. a locked or absent session bus)
                text = None
        else:
            try:
                text = (self.dir / f"{key_id}.key").read_text(encoding="ascii").strip()
            except OSError:
                text = None
        if not text:
            raise AccountLocked(f"the secret of account {key_id} is not in the {store} store")
        return bytes.fromhex(text)

    @staticmethod
    def _keyring_put(key_id: str, value: str) -> bool:
        # The fail backend raises NoKeyringError; the null backend accepts and forgets: so read back.
        try:
            import keyring  # as in get()

            keyring.set_password(KEYRING_SERVICE, f"account:{key_id}", value)
            return keyring.get_password(KEYRING_SERVICE, f"account:{key_id}") == value
        except Exception:
            return False


def _encrypt(secret: bytes, plaintext: bytes, aad: bytes) -> dict[str, str]:
    nonce = os.urandom(12)
    return {"cipher": "aes-256-gcm", "nonce": nonce.hex(),
            "ciphertext": AESGCM(secret).encrypt(nonce, plaintext, aad).hex()}


def _decrypt(secret: bytes, record: dict[str, str], aad: bytes) -> bytes:
    try:
        return AESGCM(secret).decrypt(bytes.fromhex(record["nonce"]), bytes.fromhex(record["ciphertext"]), aad)
    except (InvalidTag, KeyError, ValueError) as exc:
        raise AccountLocked("the stored key does not decrypt with its secret") from exc


class AccountStore:
    """Thread-safe: the server calls it from worker threads."""

    def __init__(self, data_dir: Path, *, use_keyring: bool = True):
        self.data_dir = Path(data_dir)
        self.accounts_dir = self.data_dir / "accounts"
        self.login_dir = self.data_dir / "login"
        self.secrets = SecretStore(self.data_dir / "secrets", use_keyring)
        self._lock = threading.RLock()

    @property
    def user_data_file(self) -> Path:
        return user_data_path(self.data_dir)

    @property
    def user_api_key_file(self) -> Path:
        return self.login_dir / "userApiKey.json"

    # ---- records ----
    def _path(self, email: str) -> Path:
        return self.accounts_dir / f"{hashlib.sha256(email.encode('utf-8')).hexdigest()}.json"

    def _records(self):
        if not self.accounts_dir.is_dir():
            return
        for path in sorted(self.accounts_dir.glob("*.json")):
            try:
                yield path, json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a damaged file is skipped, not fatal for the other accounts

    def _find(self, org_id: str) -> tuple[Path, dict]:
        if valid_org_id(org_id):
            for path, record in self._records():
                if record.get("orgId") == org_id:
                    return path, record
        raise UnknownAccount(org_id)

    @staticmethod
    def _account(record: dict) -> Account:
        return Account(record["orgId"], record["address"], record["email"], record["userId"],
                       float(record.get("createdAt", 0)), record.get("secretStore", "file"))

    # ---- public API ----
    def sign_in(self, email: Any) -> tuple[Account, bool]:
        """Unlock (or, the first time, create) the account of ``email`` and make it the session.

        Returns ``(account, created)``.
        """
        email = normalize_email(email)
        with self._lock:
            path = self._path(email)
            created = not path.exists()
            if created:
                record = self._create(email)
                _write_json(path, record)
            else:
                record = json.loads(path.read_text(encoding="utf-8"))
            account = self._account(record)
            self.private_key(account.org_id)  # refuses to sign in to an account that cannot sign
            _write_json(self.user_data_file, {account.org_id: account.public()})
            self._write_api_keys()
            return account, created

    def _create(self, email: str) -> dict:
        from eth_account import Account as EthAccount  # eth-account (~0.3 s): `rl-swarm join` imports this module

        eoa = EthAccount.create()
        org_id, user_id = uuid.uuid4().hex, str(uuid.uuid4())
        secret = secrets.token_bytes(32)
        store = self.secrets.put(org_id, secret)
        aad = f"{org_id}:{eoa.address}".encode()
        return {"version": 1, "orgId": org_id, "userId": user_id, "email": email, "address": eoa.address,
                "createdAt": time.time(), "secretStore": store, "peers": [],
                "key": _encrypt(secret, bytes(eoa.key), aad)}

    def _write_api_keys(self) -> None:
        # rl-swarm shape, minus the raw key: the node only reads the activation flag.
        keys = {r["orgId"]: [{"publicKey": r["address"], "privateKey": None,
                              "createdAt": r.get("createdAt"), "activated": True}]
                for _, r in self._records() if "orgId" in r}
        _write_json(self.user_api_key_file, keys)

    def get(self, org_id: str) -> Account:
        with self._lock:
            return self._account(self._find(org_id)[1])

    def private_key(self, org_id: str) -> str:
        """The ``0x`` hex private key, decrypted in memory; never logged, never written elsewhere."""
        with self._lock:
            record = self._find(org_id)[1]
        secret = self.secrets.get(org_id, record.get("secretStore", "file"))
        key = _decrypt(secret, record["key"], f"{org_id}:{record['address']}".encode())
        return "0x" + key.hex()

    def link_peer(self, org_id: str, peer_id: str) -> None:
        with self._lock:
            path, record = self._find(org_id)
            peers = record.setdefault("peers", [])
            if peer_id not in peers:
                peers.append(peer_id)
                _write_json(path, record)

    def peers(self, org_id: str) -> list[str]:
        with self._lock:
            return list(self._find(org_id)[1].get("peers", []))

    def current(self) -> Account | None:
        """The signed-in account (persisted in userData.json), or None when signed out."""
        with self._lock:
            first = read_user_data(self.user_data_file)
            if first is None:
                return None
            try:
                return self.get(first[0])
            except (OSError, ValueError, UnknownAccount, AttributeError, TypeError):
                return None

    def sign_out(self, org_id: str | None = None) -> bool:
        """End the session (of ``org_id``, or whichever is current). The account stays on disk."""
        with self._lock:
            current = self.current()
            if current is None or (org_id is not None and current.org_id != org_id):
                return False
            self.user_data_file.unlink(missing_ok=True)
            return True
