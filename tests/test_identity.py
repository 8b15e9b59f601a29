"""Identity files: byte compatibility with hivemind, refusal to overwrite, clear errors."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from desktop.identity import (
    Identity,
    IdentityError,
    create_identity,
    decode_keyfile,
    encode_keyfile,
    is_valid_peer_id,
    load_identity,
    load_or_create_identity,
    peer_id_from_public_key,
    peer_name,
)
from desktop.identity import keyfile, names, peerid

POSIX = os.name != "nt"
FIXED_PEER_ID = "QmR1JZSX8GWnyna2MZfa37og8VLECyNTp56hDfiyXGv7Gw"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ours(tmp_path) -> Identity:
    return create_identity(tmp_path / "swarm.pem")


# --- creating and loading ----------------------------------------------------------------

def test_create_writes_read_only_hivemind_sized_file(tmp_path):
    path = tmp_path / "data" / "nested" / "swarm.pem"
    ident = create_identity(path)
    assert ident.path == path
    assert 1190 <= path.stat().st_size <= 1200
    if POSIX:
        assert mode(path) == 0o400
        assert mode(path.parent) & 0o077 == 0  # new parents are private to the owner
    assert ident.peer_id.startswith("Qm")
    assert is_valid_peer_id(ident.peer_id)
    assert ident.name == peer_name(ident.peer_id)
    assert ident.private_key.key_size == 2048
    assert ident.private_key.public_key().public_numbers().e == 65537
    assert sorted(p.name for p in path.parent.iterdir()) == ["swarm.pem"]  # no temp left

    again = load_identity(path)
    assert again == ident
    assert again.private_key.private_numbers() == ident.private_key.private_numbers()


def test_create_twice_refuses_and_keeps_original(ours):
    before = ours.path.read_bytes()
    with pytest.raises(IdentityError, match="already exists"):
        create_identity(ours.path)
    assert ours.path.read_bytes() == before
    assert load_identity(ours.path).peer_id == ours.peer_id


def test_atomic_writer_never_replaces_existing_file(tmp_path):
    # Covers the race where another process creates the file after our existence check.
    path = tmp_path / "swarm.pem"
    path.write_bytes(b"someone else's key")
    with pytest.raises(FileExistsError):
        keyfile.write_new_key_file(path, b"ours")
    assert path.read_bytes() == b"someone else's key"
    assert [p.name for p in tmp_path.iterdir()] == ["swarm.pem"]


def test_load_or_create(tmp_path):
    path = tmp_path / "swarm.pem"
    first, created = load_or_create_identity(path)
    assert created
    second, created_again = load_or_create_identity(path)
    assert not created_again
    assert second == first


def test_load_missing_file(tmp_path):
    with pytest.raises(IdentityError, match="does not exist"):
        load_identity(tmp_path / "nope.pem")
    assert not (tmp_path / "nope.pem").exists()


def test_load_directory(tmp_path):
    with pytest.raises(IdentityError, match="directory"):
        load_identity(tmp_path)


def test_repr_hides_key_material(ours):
    text = repr(ours) + str(ours)
    assert ours.peer_id in text
    assert ours.name in text
    assert "private_key" not in text
    numbers = ours.private_key.private_numbers()
    for secret in (numbers.d, numbers.p, numbers.q, numbers.public_numbers.n):
        assert str(secret) not in text
        assert f"{secret:x}" not in text
    raw = ours.path.read_bytes()
    assert raw.hex()[40:80] not in text


def test_encode_decode_round_trip():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = encode_keyfile(key)
    assert data[:2] == b"\x08\x00"
    assert data[2] == 0x12  # Type=RSA, then the bytes field
    assert decode_keyfile(data).private_numbers() == key.private_numbers()


def test_identity_import_stays_light():
    code = ("import sys, desktop.identity, desktop.machine.probe; "
            "print([m for m in ('torch', 'hivemind', 'transformers', 'google.protobuf') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == "[]"


# --- compatibility with hivemind ---------------------------------------------------------

def test_hivemind_key_loads_with_hivemind_peer_id(tmp_path):
    from hivemind.p2p import P2P, PeerID

    path = tmp_path / "swarm.pem"
    P2P.generate_identity(str(path))
    ident = load_identity(path)
    assert ident.peer_id == str(PeerID.from_identity(path.read_bytes()))
    # We write exactly what hivemind writes for the same key.
    assert encode_keyfile(ident.private_key) == path.read_bytes()


def test_our_key_accepted_by_hivemind(ours):
    from hivemind.p2p import PeerID

    assert str(PeerID.from_identity(ours.path.read_bytes())) == ours.peer_id
    assert peer_id_from_public_key(ours.private_key.public_key()) == ours.peer_id


@pytest.mark.slow
def test_real_dht_reports_our_peer_id(ours):
    import hivemind

    dht = hivemind.DHT(start=True, identity_path=str(ours.path),
                       host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    try:
        assert str(dht.peer_id) == ours.peer_id
    finally:
        dht.shutdown()


# --- corrupt and foreign files -----------------------------------------------------------

def _pem_text() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _ed25519_libp2p() -> bytes:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    return keyfile.encode_key_message(1, raw)


def _rsa_1024() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.private_bytes(serialization.Encoding.DER,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return keyfile.encode_key_message(0, der)


def _rsa_pkcs8() -> bytes:
    # Python's loader accepts PKCS#8, but the Go daemon does not: must be refused.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return keyfile.encode_key_message(0, der)


def _truncated() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return encode_keyfile(key)[:700]


def _garbled_der() -> bytes:
    good = bytearray(encode_keyfile(rsa.generate_private_key(public_exponent=65537,
                                                             key_size=2048)))
    good[200:260] = b"\xff" * 60  # inside the modulus and private exponent
    return bytes(good)


CORRUPT = {
    "random": (lambda: random.Random(7).randbytes(1196), "not a libp2p private key|PKCS#1"),
    "truncated": (_truncated, "truncated"),
    "empty": (lambda: b"", "is empty"),
    "pem_text": (_pem_text, "PEM text"),
    "ed25519": (_ed25519_libp2p, "type Ed25519"),
    "rsa_1024": (_rsa_1024, "1024-bit"),
    "pkcs8": (_rsa_pkcs8, "PKCS#1"),
    "garbled_der": (_garbled_der, "cannot be parsed|PKCS#1"),
    "text": (lambda: b"hello world\n", "not a libp2p private key"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_file_gives_clear_error_and_is_untouched(tmp_path, kind):
    make, pattern = CORRUPT[kind]
    path = tmp_path / "swarm.pem"
    data = make()
    path.write_bytes(data)
    os.chmod(path, 0o600)
    with pytest.raises(IdentityError, match=pattern) as info:
        load_identity(path)
    assert str(path) in str(info.value)
    with pytest.raises(IdentityError):
        load_or_create_identity(path)  # never "repairs" by overwriting
    with pytest.raises(IdentityError, match="already exists"):
        create_identity(path)
    assert path.read_bytes() == data
    if POSIX:
        assert mode(path) == 0o600


def test_decode_without_path_still_explains():
    with pytest.raises(IdentityError, match="^Identity data is empty"):
        decode_keyfile(b"")


def test_oversized_file_refused(tmp_path):
    path = tmp_path / "swarm.pem"
    path.write_bytes(b"\x00" * (keyfile.MAX_FILE_BYTES + 10))
    with pytest.raises(IdentityError, match="too large"):
        load_identity(path)


# --- peer ids and names ------------------------------------------------------------------

def test_base58_round_trip_with_leading_zeros():
    rng = random.Random(3)
    for data in [b"", b"\x00", b"\x00\x00\x01", b"\xff" * 5] + [rng.randbytes(34) for _ in range(50)]:
        assert peerid.b58decode(peerid.b58encode(data)) == data
    assert peerid.b58encode(b"hello world") == "StV1DL6CwTryKyV"
    with pytest.raises(ValueError):
        peerid.b58decode("0OIl")


def test_is_valid_peer_id():
    assert is_valid_peer_id(FIXED_PEER_ID)
    assert not is_valid_peer_id("")
    assert not is_valid_peer_id("hello")
    assert not is_valid_peer_id(FIXED_PEER_ID[:-3])


def _random_peer_ids(n: int) -> list[str]:
    rng = random.Random(42)
    return [peerid.b58encode(b"\x12\x20" + rng.randbytes(32)) for _ in range(n)]


def test_names_are_three_friendly_words_and_deterministic():
    for pid in _random_peer_ids(200):
        name = peer_name(pid)
        assert name == peer_name(pid)
        first, second, animal = name.split(" ")
        assert first in names.ADJECTIVES
        assert second in names.ADJECTIVES
        assert first != second
        assert animal in names.ANIMALS


def test_names_rarely_collide():
    ids = _random_peer_ids(200)
    assert len(set(ids)) == 200
    assert len({peer_name(pid) for pid in ids}) >= 198


def test_name_mapping_is_locked():
    # Regression lock: every peer derives everyone's names, so this must never change.
    assert peer_name(FIXED_PEER_ID) == "warm tiny kangaroo"
    assert len(names.ADJECTIVES) == 128
    assert len(names.ANIMALS) == 128


def test_word_lists_are_clean():
    for words in (names.ADJECTIVES, names.ANIMALS):
        assert len(set(words)) == len(words)
        assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
