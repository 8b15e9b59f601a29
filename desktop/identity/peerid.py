"""libp2p peer ids for RSA keys, computed without hivemind or multihash packages.

peer id = base58btc(multihash(sha2-256, sha256(PublicKey{Type=RSA, Data=SPKI DER}))),
exactly what hivemind's ``PeerID.from_identity`` and the Go daemon produce ("Qm...").
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .keymsg import KEY_TYPE_RSA, encode_key_message

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
# Multihash prefix: code 0x12 (sha2-256), digest length 0x20 (32 bytes).
SHA256_MULTIHASH_PREFIX = b"\x12\x20"


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58; each leading zero byte becomes a leading '1'."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, rem = divmod(n, 58)
        digits.append(B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ValueError on characters outside the alphabet."""
    n = 0
    for ch in text:
        try:
            n = n * 58 + _B58_INDEX[ch]
        except KeyError:
            raise ValueError(f"invalid base58 character {ch!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def _public_key_message(der: bytes) -> bytes:
    # libp2p PublicKey{Type=RSA(0), Data=der}; same layout as the private key message.
    return encode_key_message(KEY_TYPE_RSA, der)


def peer_id_from_public_key(pub: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """The base58 peer id of an RSA key (a private key is accepted for convenience)."""
    if isinstance(pub, rsa.RSAPrivateKey):
        pub = pub.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise TypeError(f"need an RSA public key, got {type(pub).__name__}")
    der = pub.public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    # The libp2p spec inlines keys of <= 42 bytes with the identity hash; RSA keys never are.
    digest = hashlib.sha256(_public_key_message(der)).digest()
    return b58encode(SHA256_MULTIHASH_PREFIX + digest)


def is_valid_peer_id(peer_id: str) -> bool:
    """True for a well-formed sha2-256 peer id, e.g. one pasted into a settings field."""
    try:
        raw = b58decode(peer_id)
    except ValueError:
        return False
    return len(raw) == 34 and raw.startswith(SHA256_MULTIHASH_PREFIX)
