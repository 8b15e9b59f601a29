"""Who wrote a DHT entry: the peer id an ``[owner:ssh-rsa …]`` subkey proves (pure: no hivemind).

hivemind's ``RSASignatureValidator`` only lets the holder of that RSA key write under such a
subkey, and the key is the peer's libp2p identity, so the subkey names its writer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Container, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from desktop.identity import peer_id_from_public_key

from .records import RecordError

T = TypeVar("T")
OWNER_RE = re.compile(rb"\[owner:(ssh-rsa [A-Za-z0-9+/]+={0,2})\]")
MAX_SUBKEY_BYTES = 4096  # an 8192-bit key in OpenSSH form is ~1.4 KB


def publisher_peer_id(subkey: Any) -> str | None:
    """The libp2p peer id proven by an ``[owner:…]`` subkey, or None if it is not one."""
    if not isinstance(subkey, bytes) or len(subkey) > MAX_SUBKEY_BYTES:
        return None
    return _peer_id_of_owner(subkey)


@lru_cache(maxsize=1024)  # the same few subkeys come back on every poll
def _peer_id_of_owner(subkey: bytes) -> str | None:
    match = OWNER_RE.fullmatch(subkey)
    if match is None:
        return None
    try:
        key = serialization.load_ssh_public_key(match.group(1))
    except Exception:  # malformed key material from a peer
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    return peer_id_from_public_key(key)


def signed_record(subkey: Any, value: Any, decode: Callable[[Any, str], T],
                  owners: Container[str] | None = None) -> tuple[T | None, str | None]:
    """One DHT entry judged the same way for every kind of record: (record, None), or (None,
    reason) with reason "unsigned" (no proven writer), "foreign" (a writer other than ``owners``
    allows under that key) or the decoder's RecordError reason. ``decode(value, publisher)`` must
    refuse a record that names another publisher than the one the subkey proves."""
    publisher = publisher_peer_id(subkey)
    if publisher is None:
        return None, "unsigned"
    if owners is not None and publisher not in owners:
        return None, "foreign"
    try:
        return decode(value, publisher), None
    except RecordError as exc:
        return None, exc.reason
