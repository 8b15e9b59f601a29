"""Peer identity: the swarm.pem key file, its libp2p peer id and a friendly name.

    keymsg.py   libp2p's key message (protobuf by hand): the layer both others build on
    peerid.py   the base58 peer id of a public key, and checking one
    keyfile.py  swarm.pem: load, create (never overwrite), decode with one clear error each
    names.py    three friendly words from a peer id
    backup.py   a swarm.pem backup, plain or passphrase-protected, and its import

Imports only the standard library and ``cryptography`` so the GUI can use it cheaply.
"""

from .keyfile import (
    Identity,
    IdentityError,
    create_identity,
    decode_keyfile,
    encode_keyfile,
    load_identity,
    load_or_create_identity,
)
from .names import peer_name
from .peerid import is_valid_peer_id, peer_id_from_public_key

__all__ = [
    "Identity",
    "IdentityError",
    "create_identity",
    "decode_keyfile",
    "encode_keyfile",
    "is_valid_peer_id",
    "load_identity",
    "load_or_create_identity",
    "peer_id_from_public_key",
    "peer_name",
]
