"""swarm.pem backups: export, inspect and import on real files."""

import json
import os
import stat
import time
from datetime import datetime

import pytest

from desktop.identity import create_identity, load_identity
from desktop.identity.backup import (
    MAGIC,
    BackupError,
    PassphraseRequired,
    export_backup,
    import_backup,
    inspect_backup,
    is_encrypted,
)

NOW = datetime(2026, 11, 26, 8, 40, 0)


@pytest.fixture
def two_keys(tmp_path):
    """(current identity, another identity) as real key files."""
    current = create_identity(tmp_path / "node" / "identity" / "swarm.pem")
    other = create_identity(tmp_path / "other" / "swarm.pem")
    return current, other


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_plain_export_is_an_exact_owner_only_copy(two_keys, tmp_path):
    current, _ = two_keys
    dest = export_backup(current.path, tmp_path / "backups" / "swarm.pem.backup", None)
    assert dest.read_bytes() == current.path.read_bytes()
    assert _mode(dest) & 0o077 == 0
    info = inspect_backup(dest)
    assert (info.peer_id, info.name, info.encrypted) == (current.peer_id, current.name, False)
    assert load_identity(dest).peer_id == current.peer_id  # usable as swarm.pem as is


@pytest.mark.slow
def test_encrypted_export_round_trip_and_wrong_passphrase(two_keys, tmp_path):
    current, other = two_keys
    dest = export_backup(other.path, tmp_path / "other.rlbackup", "correct horse")
    blob = dest.read_bytes()
    assert blob.startswith(MAGIC)
    assert other.path.read_bytes() not in blob
    assert is_encrypted(dest)
    assert _mode(dest) & 0o077 == 0

    with pytest.raises(PassphraseRequired):
        inspect_backup(dest)
    before = current.path.read_bytes()
    with pytest.raises(BackupError, match="Wrong passphrase"):
        import_backup(dest, current.path, "wrong", now=NOW)
    assert current.path.read_bytes() == before  # nothing changed
    assert sorted(p.name for p in current.path.parent.iterdir()) == ["swarm.pem"]

    info = inspect_backup(dest, "correct horse")
    assert (info.peer_id, info.encrypted) == (other.peer_id, True)
    result = import_backup(dest, current.path, "correct horse", now=NOW)
    assert result.changed
    assert result.peer_id == other.peer_id
    assert result.name == other.name
    assert result.previous_backup == current.path.with_name("swarm.pem.2026-11-26T08-40-00.bak")
    assert result.previous_backup.read_bytes() == before  # old key kept, byte for byte
    assert current.path.read_bytes() == other.path.read_bytes()
    assert _mode(current.path) == 0o400
    assert load_identity(current.path).peer_id == other.peer_id


def test_plain_import_keeps_dated_backup_and_same_key_is_a_no_op(two_keys, tmp_path):
    current, other = two_keys
    old = current.path.read_bytes()
    result = import_backup(other.path, current.path, now=NOW)
    assert result.previous_backup.read_bytes() == old
    again = import_backup(other.path, current.path, now=NOW)
    assert not again.changed
    assert again.previous_backup is None
    assert "already" in again.message
    # a second real swap in the same second gets its own .bak, never overwriting the first
    back = import_backup(result.previous_backup, current.path, now=NOW)
    assert back.previous_backup.name == "swarm.pem.2026-11-26T08-40-00-1.bak"
    assert back.previous_backup.read_bytes() == other.path.read_bytes()
    assert current.path.read_bytes() == old


def test_import_into_empty_place(two_keys, tmp_path):
    _, other = two_keys
    target = tmp_path / "fresh" / "identity" / "swarm.pem"
    result = import_backup(other.path, target)
    assert result.changed
    assert result.previous_backup is None
    assert target.read_bytes() == other.path.read_bytes()


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"-----BEGIN RSA PRIVATE KEY-----\nabc\n", "PEM"),
    (b"\x08\x00\x12\x05abc", "corrupt"),
    (MAGIC + b"{not json", "damaged"),
    (MAGIC + b'{"version": 9}', "newer"),
])
def test_bad_backups_are_refused_and_change_nothing(two_keys, tmp_path, content, match):
    current, _ = two_keys
    bad = tmp_path / "bad.backup"
    bad.write_bytes(content)
    before = current.path.read_bytes()
    with pytest.raises(BackupError, match=match):
        import_backup(bad, current.path, passphrase="x", now=NOW)
    assert current.path.read_bytes() == before
    assert sorted(p.name for p in current.path.parent.iterdir()) == ["swarm.pem"]


@pytest.mark.slow
def test_flipped_ciphertext_and_missing_files(two_keys, tmp_path):
    current, _ = two_keys
    dest = export_backup(current.path, tmp_path / "b.rlbackup", "pw")
    blob = bytearray(dest.read_bytes())
    blob[-10] ^= 0x01  # inside the base64 ciphertext
    dest.chmod(0o600)
    dest.write_bytes(bytes(blob))
    with pytest.raises(BackupError):
        inspect_backup(dest, "pw")
    with pytest.raises(BackupError, match="does not exist"):
        inspect_backup(tmp_path / "nope")
    with pytest.raises(BackupError, match="does not exist"):
        export_backup(tmp_path / "nope.pem", tmp_path / "x", None)
    with pytest.raises(BackupError, match="key file itself"):
        export_backup(current.path, current.path, None)
    with pytest.raises(BackupError, match="non-empty"):
        export_backup(current.path, tmp_path / "y", "")


def _with_kdf(blob: bytes, **kdf) -> bytes:
    body = json.loads(blob[len(MAGIC):])
    body["kdf"].update(kdf)
    return MAGIC + json.dumps(body).encode()


@pytest.mark.parametrize("kdf", [
    {"n": 2 ** 20, "r": 32, "p": 16},   # ~4 GiB and minutes of CPU if it were trusted
    {"n": 2 ** 16},                     # merely twice our cost: still not what we write
    {"p": True},                        # equal to 1 in Python, but not the integer we write
    {"n": "32768"},
])
def test_crafted_kdf_cost_is_refused_fast_and_changes_nothing(two_keys, tmp_path, kdf):
    current, other = two_keys
    good = export_backup(other.path, tmp_path / "good.rlbackup", "correct horse").read_bytes()
    crafted = tmp_path / "crafted.rlbackup"
    crafted.write_bytes(_with_kdf(good, **kdf))
    before, crafted_before = current.path.read_bytes(), crafted.read_bytes()
    started = time.monotonic()
    for attempt in (lambda: inspect_backup(crafted, "correct horse"),
                    lambda: import_backup(crafted, current.path, "correct horse", now=NOW)):
        with pytest.raises(BackupError, match="key-derivation settings this app never writes"):
            attempt()
    assert time.monotonic() - started < 0.5  # two refusals, no KDF run
    assert current.path.read_bytes() == before
    assert crafted.read_bytes() == crafted_before
    assert sorted(p.name for p in current.path.parent.iterdir()) == ["swarm.pem"]


def test_missing_kdf_settings_say_so(two_keys, tmp_path):
    _, other = two_keys
    good = export_backup(other.path, tmp_path / "good.rlbackup", "pw").read_bytes()
    body = json.loads(good[len(MAGIC):])
    del body["kdf"]["r"]
    bad = tmp_path / "bad.rlbackup"
    bad.write_bytes(MAGIC + json.dumps(body).encode())
    with pytest.raises(BackupError, match="settings are missing"):
        inspect_backup(bad, "pw")
