"""Local accounts: creation, unlock across restarts, encryption at rest, keyring and file secrets."""

from __future__ import annotations

import json
import os
import stat
import sys

import keyring
import keyring.backend
import pytest
from keyring.backends import fail, null

from desktop.services.accounts import (AccountLocked, AccountStore, InvalidEmail, UnknownAccount,
                                       normalize_email)

POSIX = sys.platform != "win32"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that works, for the path a desktop with a Secret Service / Keychain takes."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture
def use_keyring():
    """Install a keyring backend for one test, then put the previous one back."""
    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


@pytest.fixture(autouse=True)
def _no_keyring(use_keyring):
    # As on a headless Linux box, and never the developer's real keyring.
    use_keyring(fail.Keyring())


def _all_bytes(root) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sign_in_creates_then_unlocks_the_same_account(tmp_path):
    store = AccountStore(tmp_path)
    account, created = store.sign_in("Alice@Example.com ")
    assert created
    assert account.email == "alice@example.com"
    assert account.address.startswith("0x")
    assert len(account.org_id) == 32
    again, created_again = store.sign_in("alice@example.com")
    assert not created_again
    assert again.org_id == account.org_id
    assert again.address == account.address
    # A new process (new store on the same dir) unlocks the same key.
    reopened = AccountStore(tmp_path)
    assert reopened.current() == account
    key = reopened.private_key(account.org_id)
    from eth_account import Account as EthAccount

    assert EthAccount.from_key(key).address == account.address
    other, _ = store.sign_in("bob@example.com")
    assert other.org_id != account.org_id
    assert other.address != account.address
    assert store.current() == other  # the session is the last sign-in


def test_key_is_encrypted_and_files_are_private(tmp_path):
    store = AccountStore(tmp_path)
    account, _ = store.sign_in("carol@example.com")
    key_hex = store.private_key(account.org_id).removeprefix("0x")
    blob = _all_bytes(tmp_path)
    assert key_hex.encode() not in blob
    assert key_hex.upper().encode() not in blob
    assert bytes.fromhex(key_hex) not in blob
    record_files = list((tmp_path / "accounts").glob("*.json"))
    assert len(record_files) == 1
    record = json.loads(record_files[0].read_text())
    assert record["secretStore"] == "file"
    assert account.secret_store == "file"
    assert "carol" not in record_files[0].name  # named by the email's hash
    secret_file = tmp_path / "secrets" / f"{account.org_id}.key"
    assert secret_file.is_file()
    if POSIX:
        for path in [*record_files, secret_file, store.user_data_file, store.user_api_key_file]:
            assert _mode(path) == 0o600, path
        for folder in ("accounts", "secrets", "login"):
            assert _mode(tmp_path / folder) == 0o700, folder
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_rl_swarm_files(tmp_path):
    store = AccountStore(tmp_path)
    account, _ = store.sign_in("dave@example.com")
    user_data = json.loads(store.user_data_file.read_text())
    assert user_data == {account.org_id: {"orgId": account.org_id, "address": account.address,
                                          "userId": account.user_id, "email": "dave@example.com"}}
    keys = json.loads(store.user_api_key_file.read_text())
    entry = keys[account.org_id][0]
    assert entry["publicKey"] == account.address
    assert entry["privateKey"] is None
    assert entry["activated"] is True
    assert entry["createdAt"] > 0


def test_keyring_backend_holds_the_secret(tmp_path, use_keyring):
    ring = MemoryKeyring()
    use_keyring(ring)
    store = AccountStore(tmp_path)
    account, _ = store.sign_in("erin@example.com")
    assert account.secret_store == "keyring"
    assert ("rl-swarm-desktop", f"account:{account.org_id}") in ring.items
    assert not (tmp_path / "secrets").exists()
    assert AccountStore(tmp_path).private_key(account.org_id).startswith("0x")
    ring.items.clear()  # the user wiped the keyring: the account cannot be unlocked any more
    with pytest.raises(AccountLocked):
        store.private_key(account.org_id)
    with pytest.raises(AccountLocked):
        store.sign_in("erin@example.com")


def test_null_keyring_falls_back_to_file(tmp_path, use_keyring):
    use_keyring(null.Keyring())  # accepts writes and forgets them
    account, _ = AccountStore(tmp_path).sign_in("frank@example.com")
    assert account.secret_store == "file"
    assert (tmp_path / "secrets" / f"{account.org_id}.key").is_file()


def test_use_keyring_false_forces_file(tmp_path, use_keyring):
    use_keyring(MemoryKeyring())
    account, _ = AccountStore(tmp_path, use_keyring=False).sign_in("gina@example.com")
    assert account.secret_store == "file"


def test_missing_or_tampered_secret_locks_the_account(tmp_path):
    store = AccountStore(tmp_path)
    account, _ = store.sign_in("hank@example.com")
    secret_file = tmp_path / "secrets" / f"{account.org_id}.key"
    os.replace(secret_file, tmp_path / "moved.key")
    with pytest.raises(AccountLocked):
        store.private_key(account.org_id)
    os.replace(tmp_path / "moved.key", secret_file)
    path = next((tmp_path / "accounts").glob("*.json"))
    record = json.loads(path.read_text())
    record["address"] = "0x" + "11" * 20  # the key is bound to its org id and address
    path.write_text(json.dumps(record))
    with pytest.raises(AccountLocked):
        store.private_key(account.org_id)


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "a b@example.com", "x@-bad-.com",
                                   "a" * 65 + "@example.com", "u@" + "d" * 250 + ".com", None, 5,
                                   ["a@example.com"], "<script>@example.com"])
def test_bad_emails_are_refused(tmp_path, email):
    with pytest.raises(InvalidEmail):
        AccountStore(tmp_path).sign_in(email)
    assert not (tmp_path / "accounts").exists()


def test_normalize_email():
    assert normalize_email("  Ivy.Smith+rl@Mail.Example.ORG ") == "ivy.smith+rl@mail.example.org"


def test_peers_session_and_unknown_accounts(tmp_path):
    store = AccountStore(tmp_path)
    account, _ = store.sign_in("jack@example.com")
    store.link_peer(account.org_id, "QmPeerOne")
    store.link_peer(account.org_id, "QmPeerOne")
    store.link_peer(account.org_id, "QmPeerTwo")
    assert AccountStore(tmp_path).peers(account.org_id) == ["QmPeerOne", "QmPeerTwo"]
    assert store.get(account.org_id) == account
    assert not store.sign_out("0" * 32)  # not the current session
    assert store.sign_out()
    assert store.current() is None
    assert not store.user_data_file.exists()
    assert not store.sign_out()
    assert store.get(account.org_id) == account  # signing out keeps the account
    for bad in ("0" * 32, "../accounts", "", None):
        with pytest.raises(UnknownAccount):
            store.get(bad)
