"""Find the coordinator a node or a command should use, from the config's profile.

local: the discovery file the local services write (``<data>/chain/services.json``); no file means
no chain (the node trains and swarms without one). testnet: the public RPC and contract of the facts.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

from desktop.chain.profiles import (TESTNET, ChainProfile, ServicesFileError, local_profile,
                                    services_file)

log = logging.getLogger(__name__)


def resolve_profile(config, data_dir: Path) -> ChainProfile | None:
    if not config.chain.enabled:
        return None
    if config.profile == "testnet":
        return ChainProfile("testnet", config.chain.rpc_url or TESTNET.rpc_url, TESTNET.chain_id,
                            TESTNET.contract_address, config.chain.login_url or TESTNET.login_url)
    path = Path(config.chain.services_file) if config.chain.services_file else services_file(data_dir)
    if not path.is_file():
        return None
    try:
        return local_profile(path)
    except ServicesFileError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def signed_in_org(profile: ChainProfile, timeout: float = 5.0) -> str | None:
    """The orgId of the account signed in on the profile's login server, if any."""
    token = profile.api_token()
    request = urllib.request.Request(profile.login_url.rstrip("/") + "/api/user-data",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # always this machine
    try:
        with opener.open(request, timeout=timeout) as reply:
            org = json.loads(reply.read(65536)).get("orgId")
            return org if isinstance(org, str) else None
    except (OSError, ValueError):
        return None


def make_client(profile: ChainProfile, org_id: str | None):
    from desktop.chain.client import CoordinatorClient

    return CoordinatorClient.from_profile(profile, org_id=org_id)
