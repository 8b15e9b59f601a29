"""Find the coordinator a node or a command should use, from the config's profile.

local: the discovery file the local services write (``<data>/chain/services.json``); no file means
no chain (the node trains and swarms without one). testnet: the public RPC and contract of the facts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from pathlib import Path

from desktop.chain.client import CoordinatorClient
from desktop.chain.profiles import ChainProfile, ServicesFileError, TESTNET, local_profile, services_file


log = logging.getLogger(__name__)


def services_path(config, data_dir: Path) -> Path:
    """Where the local profile's services advertise themselves."""
    return Path(config.chain.services_file) if config.chain.services_file else services_file(data_dir)


def resolve_profile(config, data_dir: Path) -> ChainProfile | None:
    if not config.chain.enabled:
        return None
    if config.profile == "testnet":
        return ChainProfile("testnet", config.chain.rpc_url or TESTNET.rpc_url, TESTNET.chain_id,
                            TESTNET.contract_address, config.chain.login_url or TESTNET.login_url)
    path = services_path(config, data_dir)
    if not path.is_file():
        return None
    try:
        return local_profile(path, name=config.profile)  # "local", or "swarm" for a joined one
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


def make_client(profile: ChainProfile, org_id: str | None, services_path: Path | None = None) -> CoordinatorClient:
    """The profile's coordinator client. For local services (``services_path``), one that
    follows their discovery file: services restarted on other ports are found again by
    themselves, without restarting the node."""

    if services_path is not None:
        return FollowingClient(services_path, profile, org_id)
    return CoordinatorClient.from_profile(profile, org_id=org_id)


class FollowingClient(CoordinatorClient):
    """The client of the local services, which re-reads ``services.json`` when it changes (checked
    at most every ``every`` seconds, before a read or a write) and points itself at the newest
    services: a node follows services restarted on other ports without restarting itself."""

    def __init__(self, path: Path, profile: ChainProfile, org_id: str | None, every: float = 2.0, **kwargs) -> None:
        super().__init__(profile.rpc_url, profile.contract_address, login_url=profile.login_url,
                         api_token=profile.api_token(), org_id=org_id, **kwargs)
        self._path, self._every, self._profile = Path(path), every, profile
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.reloads = 0

    def _file_stamp(self):
        try:
            st = self._path.stat()
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def _retrying(self, op, what, attempts=None):
        self._maybe_reload()
        return super()._retrying(op, what, attempts)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._every:
            return
        with self._lock:
            self._checked = now
            stamp = self._file_stamp()
            if stamp is None or stamp == self._stamp:
                return  # gone (services stopped): keep pointing where they were, calls fail as unreachable
            self._stamp = stamp
            try:
                profile = local_profile(self._path, self._profile.name)
            except ServicesFileError as exc:
                log.warning("ignoring %s: %s", self._path, exc)
                return
            if profile != self._profile:
                log.info("local services moved (%s, %s): following them", profile.rpc_url, profile.login_url)
                self._connect(profile.rpc_url, profile.contract_address, profile.login_url, profile.api_token())
                self._profile = profile
                self.reloads += 1
