"""The compiled SwarmCoordinator artifact and revert decoding.

Light on purpose (json/hashlib/re only; keccak is imported on first decode) so the GUI and the
login server can read the ABI without loading web3.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from desktop.utils.paths import resource_path

ARTIFACT_PATH: Path = resource_path("contracts", "SwarmCoordinator.json")
SOURCE_PATH: Path = resource_path("contracts", "SwarmCoordinator.sol")


@functools.lru_cache(maxsize=1)
def _cached_artifact() -> str:
    return ARTIFACT_PATH.read_text(encoding="utf-8")


def load_artifact() -> dict:
    """``{abi, bytecode, deployed_bytecode, solc_version, source_sha256, settings, ...}`` (a fresh copy)."""
    return json.loads(_cached_artifact())


def abi() -> list[dict]:
    return load_artifact()["abi"]


def bytecode() -> str:
    """Creation bytecode, ``0x``-prefixed."""
    return load_artifact()["bytecode"]


def source_sha256(path: Path = SOURCE_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _signature(item: dict) -> str:
    return f"{item['name']}({','.join(_abi_type(i) for i in item.get('inputs', []))})"


def _abi_type(param: dict) -> str:
    # Tuples spell out their components; no error of ours has one, but stay correct.
    kind = param["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){kind[5:]}"
    return kind


@functools.lru_cache(maxsize=1)
def error_selectors() -> dict[str, str]:
    """``{"0x1234abcd": "ErrorName"}`` for every custom error in the ABI."""
    from eth_utils import keccak  # comes with eth-account; only needed when decoding

    return {"0x" + keccak(text=_signature(e))[:4].hex(): e["name"]
            for e in abi() if e.get("type") == "error"}


_HEX = re.compile(r"0x[0-9a-fA-F]{8}")


def _revert_data(obj: Any, depth: int = 0) -> list[str]:
    """Candidate hex strings found in an exception / RPC error / dict / str, most specific first."""
    if depth > 4 or obj is None:
        return []
    if isinstance(obj, (bytes, bytearray)):
        return ["0x" + bytes(obj).hex()]
    if isinstance(obj, str):
        return [obj] if obj.startswith("0x") else _HEX.findall(obj)
    if isinstance(obj, dict):
        found: list[str] = []
        for key in ("data", "error", "message", "details"):
            found += _revert_data(obj.get(key), depth + 1)
        return found
    if isinstance(obj, BaseException):
        # web3 puts the raw revert data in .data; other clients only in the message or args.
        found = _revert_data(getattr(obj, "data", None), depth + 1)
        for arg in obj.args:
            found += _revert_data(arg, depth + 1)
        return found + _revert_data(obj.__cause__, depth + 1)
    return []


def revert_name(exc: Any) -> str | None:
    """The custom error name (``"PeerIdAlreadyRegistered"``...) a revert carries, else None.

    Accepts a web3 ``ContractCustomError``, any exception whose data/args/message hold the revert
    data, a JSON-RPC error dict, raw bytes or a hex string. Matches the 4-byte selector against the
    artifact's errors only, so ``Error(string)``, panics and unrelated hex give None.
    """
    table = error_selectors()
    for candidate in _revert_data(exc):
        selector = candidate[:10].lower()
        if selector in table:
            return table[selector]
    return None
