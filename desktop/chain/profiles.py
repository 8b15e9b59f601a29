"""Which chain a peer talks to: the public Gensyn testnet, or the local services of this machine.

The local services (anvil + coordinator + login server) advertise themselves in a small discovery
file, ``<data>/chain/services.json``, so a node started later (or from another process) finds the
RPC, the contract, the login server and its bearer-token file without any flags.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICES_FILE_NAME = "services.json"
SERVICES_KEYS = ("rpc_url", "contract", "login_url", "api_token_file", "chain_id")


@dataclass(frozen=True)
class ChainProfile:
    name: str
    rpc_url: str
    chain_id: int
    contract_address: str
    login_url: str
    # Only local profiles have one: the public login server is reached without our bearer token.
    api_token_file: Path | None = None

    def api_token(self) -> str | None:
        """The login server's bearer token, or None when there is no token file (yet)."""
        if self.api_token_file is None:
            return None
        try:
            token = Path(self.api_token_file).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return token or None


TESTNET = ChainProfile(
    "testnet",
    "https://gensyn-testnet.g.alchemy.com/public",
    685685,
    "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0",
    login_url="http://localhost:3000",
)


class ServicesFileError(ValueError):
    """The discovery file is missing, unreadable or lacks a key."""


def services_file(data_dir: str | os.PathLike) -> Path:
    """``<data>/chain/services.json``."""
    return Path(data_dir) / "chain" / SERVICES_FILE_NAME


def write_services_file(path: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write the discovery file atomically (temp file + rename): a reader never sees half of it."""
    missing = [k for k in SERVICES_KEYS if k not in info]
    if missing:
        raise ServicesFileError(f"services info lacks {', '.join(missing)}")
    data = {k: info[k] for k in info}
    data["chain_id"] = int(data["chain_id"])
    data["api_token_file"] = str(data["api_token_file"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_services_file(path: str | os.PathLike) -> dict[str, Any]:
    """The discovery file as a dict with every key of ``SERVICES_KEYS`` (``chain_id`` an int)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ServicesFileError(f"{path} not found: are the local services running?") from exc
    except (OSError, ValueError) as exc:
        raise ServicesFileError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ServicesFileError(f"{path} does not hold a JSON object")
    missing = [k for k in SERVICES_KEYS if k not in data]
    if missing:
        raise ServicesFileError(f"{path} lacks {', '.join(missing)}")
    data["chain_id"] = int(data["chain_id"])
    return data


def local_profile(path: str | os.PathLike, name: str = "local") -> ChainProfile:
    """The profile of the local services described by the discovery file at ``path``."""
    info = read_services_file(path)
    return ChainProfile(name, info["rpc_url"], info["chain_id"], info["contract"],
                        login_url=info["login_url"], api_token_file=Path(info["api_token_file"]))


def user_data_path(data_dir: str | os.PathLike) -> Path:
    """The login's ``userData.json``: the signed-in account; its presence is the session."""
    return Path(data_dir) / "login" / "userData.json"


def read_user_data(user_data_file: str | os.PathLike) -> tuple[str, Any] | None:
    """The first (and only) entry of ``userData.json``, ``{orgId: {orgId, address, userId, email}}``
    as rl-swarm writes it: ``(key, entry)``, or None when the file is missing, unreadable, not an
    object or empty. The one parser of that file; callers judge the entry themselves."""
    try:
        data = json.loads(Path(user_data_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data:
        return None
    return next(iter(data.items()))


def read_org_id(user_data_file: str | os.PathLike) -> str | None:
    """The signed-in org id from the login's ``userData.json`` (``{orgId: {...}}``), else None."""
    first = read_user_data(user_data_file)
    if first is None:
        return None
    key, entry = first
    return str(entry["orgId"]) if isinstance(entry, dict) and entry.get("orgId") else str(key)
