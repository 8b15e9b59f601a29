"""The swarm identity file (``swarm.pem``): read, validate and create it.

Despite its name the file is not PEM text. It is what hivemind's ``P2P.generate_identity``
writes and what the Go p2p daemon reads: a libp2p protobuf ``PrivateKey`` message
(field 1 = key type, field 2 = key bytes) holding an RSA key as PKCS#1 DER. We encode and
decode those two fields by hand so the GUI can load an identity without protobuf or hivemind.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from desktop.utils.fsutil import FileTooLarge, fsync_dir, read_bounded

from .keymsg import KEY_TYPE_NAMES, KEY_TYPE_RSA, decode_key_message, encode_key_message
from .names import peer_name
from .peerid import peer_id_from_public_key

RSA_BITS = 2048
# go-libp2p refuses RSA keys outside these bounds, so a key it would reject never loads here.
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
# A 2048-bit key file is ~1.2 KB; anything far bigger is not an identity, so don't read it all.
MAX_FILE_BYTES = 64 * 1024


class IdentityError(Exception):
    """The identity file is missing, unreadable, corrupt or of the wrong kind."""


@dataclass(frozen=True)
class Identity:
    """A loaded peer identity. The private key never appears in repr or comparisons."""

    path: Path
    peer_id: str
    name: str
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)


# --- key (de)serialisation ---------------------------------------------------------------

def _is_pkcs1_der(der: bytes) -> bool:
    """True if ``der`` is an RSAPrivateKey SEQUENCE (PKCS#1), not a PKCS#8 wrapper.

    Both start with SEQUENCE { INTEGER version, ... }; in PKCS#1 the next element is the
    modulus (INTEGER), in PKCS#8 it is the AlgorithmIdentifier (SEQUENCE). The Go daemon
    parses PKCS#1 only, while cryptography's loader accepts both, hence this check.
    """
    def skip_header(pos: int) -> tuple[int, int, int]:
        tag = der[pos]
        length = der[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(der[pos:pos + n], "big")
            pos += n
        return tag, length, pos

    try:
        tag, _, pos = skip_header(0)
        if tag != 0x30:
            return False
        tag, length, pos = skip_header(pos)
        if tag != 0x02:
            return False
        tag, _, _ = skip_header(pos + length)
        return tag == 0x02
    except IndexError:
        return False


def encode_keyfile(private_key: rsa.RSAPrivateKey) -> bytes:
    """The bytes of a swarm.pem for ``private_key``, byte-compatible with hivemind's."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise TypeError(f"need an RSA private key, got {type(private_key).__name__}")
    der = private_key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.TraditionalOpenSSL,  # = PKCS#1
        encryption_algorithm=serialization.NoEncryption(),
    )
    return encode_key_message(KEY_TYPE_RSA, der)


def decode_keyfile(data: bytes, path_for_messages: str | os.PathLike | None = None
                   ) -> rsa.RSAPrivateKey:
    """Parse swarm.pem bytes into an RSA private key, or raise IdentityError saying why."""
    where = f"Identity file {path_for_messages}" if path_for_messages else "Identity data"

    def fail(why: str) -> IdentityError:
        return IdentityError(f"{where} {why}")

    if not data:
        raise fail("is empty.")
    if data.lstrip().startswith(b"-----BEGIN"):
        raise fail("is PEM text. swarm.pem must be a binary libp2p key file "
                   "(as written by hivemind), not a PEM-encoded key.")
    try:
        key_type, der = decode_key_message(data)
    except ValueError as exc:
        raise fail(f"is not a libp2p private key file (corrupt or truncated: {exc}).") from None
    if key_type != KEY_TYPE_RSA:
        kind = KEY_TYPE_NAMES.get(key_type, f"unknown type {key_type}")
        raise fail(f"holds a key of type {kind}; RL Swarm peers need an RSA key.")
    if not _is_pkcs1_der(der):
        raise fail("does not hold an RSA key in PKCS#1 DER form (corrupt or foreign file).")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise fail(f"holds an RSA key that cannot be parsed ({exc}).") from None
    except Exception as exc:  # cryptography's Rust backend may raise its own error types
        raise fail(f"holds an RSA key that cannot be parsed ({type(exc).__name__}).") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise fail("does not hold an RSA private key.")
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise fail(f"holds a {key.key_size}-bit RSA key; libp2p needs "
                   f"{MIN_RSA_BITS} to {MAX_RSA_BITS} bits.")
    return key


# --- files -------------------------------------------------------------------------------

def _make_identity(path: Path, key: rsa.RSAPrivateKey) -> Identity:
    peer_id = peer_id_from_public_key(key.public_key())
    return Identity(path=path, peer_id=peer_id, name=peer_name(peer_id), private_key=key)


def load_identity(path: str | os.PathLike) -> Identity:
    """Load an existing identity file. Never modifies the file."""
    path = Path(path)
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise IdentityError(f"Identity file {path} does not exist.") from None
    except IsADirectoryError:
        raise IdentityError(f"Identity file {path} is a directory, not a key file.") from None
    except PermissionError:
        raise IdentityError(f"Identity file {path} cannot be read (permission denied).") from None
    except FileTooLarge:
        raise IdentityError(f"Identity file {path} is too large to be a libp2p key file "
                            f"(over {MAX_FILE_BYTES} bytes).") from None
    except OSError as exc:
        raise IdentityError(f"Identity file {path} cannot be read: {exc.strerror or exc}.") from None
    return _make_identity(path, decode_keyfile(data, path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def write_new_key_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, failing with FileExistsError if it exists.

    The bytes go to a private temp file first and are then hard-linked into place: link()
    never replaces an existing name, so a concurrent creator or an existing key always wins,
    and readers never see a half-written key.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        if os.name != "nt":
            os.chmod(tmp, 0o400)  # hard links share the inode: the key appears read-only
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            # No hard links here (some file systems). rename() on Windows never replaces an
            # existing file; elsewhere fall back to an exclusive create (not atomic, but a
            # partial file is reported as truncated on load rather than silently reused).
            if os.name == "nt":
                os.rename(tmp, path)
            else:
                _write_exclusive(path, data)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # a stray temp file is harmless; never mask the real outcome
    try:
        os.chmod(path, 0o400)  # best effort on Windows: sets the read-only attribute
    except OSError:
        pass
    fsync_dir(path.parent)


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def create_identity(path: str | os.PathLike) -> Identity:
    """Generate a fresh RSA-2048 identity at ``path``. Refuses if the file already exists."""
    path = Path(path)
    if os.path.lexists(path):
        raise IdentityError(f"Identity file {path} already exists; refusing to overwrite it.")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise IdentityError(f"Cannot create directory {path.parent} for the identity file: "
                            f"{exc.strerror or exc}.") from None
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    try:
        write_new_key_file(path, encode_keyfile(key))
    except FileExistsError:
        raise IdentityError(f"Identity file {path} already exists; refusing to overwrite it.") from None
    except OSError as exc:
        raise IdentityError(f"Cannot write identity file {path}: {exc.strerror or exc}.") from None
    return _make_identity(path, key)


def load_or_create_identity(path: str | os.PathLike) -> tuple[Identity, bool]:
    """Load the identity at ``path``, creating it first if absent. Returns (identity, created)."""
    path = Path(path)
    if not os.path.lexists(path):
        try:
            return create_identity(path), True
        except IdentityError:
            # Lost a race with another creator, or the write failed: loading reports which.
            if not os.path.lexists(path):
                raise
    return load_identity(path), False
