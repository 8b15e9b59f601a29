"""libp2p's key message (``PrivateKey`` / ``PublicKey {Type, Data}``), protobuf by hand: what a
swarm.pem holds and what a peer id hashes. No dependency: keyfile and peerid both build on it."""

from __future__ import annotations

KEY_TYPE_RSA = 0
KEY_TYPE_NAMES = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def encode_key_message(key_type: int, data: bytes) -> bytes:
    """Serialize libp2p's ``PrivateKey``/``PublicKey`` message (same two-field layout)."""
    # Tag = field_number << 3 | wire_type: 0x08 is field 1 varint, 0x12 is field 2 bytes.
    return b"\x08" + _varint(key_type) + b"\x12" + _varint(len(data)) + data


def decode_key_message(data: bytes) -> tuple[int, bytes]:
    """Parse the two-field key message; raises ValueError on anything malformed."""
    key_type: int | None = None
    key_data: bytes | None = None
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        if tag == 0x08 and key_type is None:
            key_type, pos = _read_varint(data, pos)
        elif tag == 0x12 and key_data is None:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("key data runs past the end of the file")
            key_data = data[pos:pos + length]
            pos += length
        else:
            # hivemind never writes other or repeated fields; such bytes mean a foreign file.
            raise ValueError(f"unexpected protobuf tag 0x{tag:x} at byte {pos}")
    if key_type is None or key_data is None:
        raise ValueError("key type or key data is missing")
    return key_type, key_data
