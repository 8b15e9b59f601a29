"""Real-anvil fixtures for any test that needs the coordinator chain.

Register once in tests/conftest.py with ``pytest_plugins = ["tests.chain_fixtures"]`` (one anvil
per session), or import into a module: ``from tests.chain_fixtures import anvil, w3, coordinator  # noqa``.
Skips (not fails) when anvil is not installed, with the install hint as the reason.

- ``anvil``: a session-wide :class:`Anvil` (in-memory, auto port, chain id 31337).
- ``w3``: a Web3 on it.  ``dev_accounts``: ``[(address, key), ...]``, account 0 deploys.
- ``coordinator``: one coordinator shared by the session (use unique peer ids / rounds).
- ``fresh_coordinator``: a newly deployed coordinator per test (~20 ms), for isolation.
"""

from __future__ import annotations

import uuid

import pytest

from desktop.chain.anvil import Anvil, AnvilNotFound, find_anvil
from desktop.chain.anvil import dev_accounts as _dev_accounts


@pytest.fixture(scope="session")
def anvil():
    try:
        find_anvil()
    except AnvilNotFound as exc:
        pytest.skip(str(exc))
    node = Anvil().start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def w3(anvil):
    from web3 import Web3

    return Web3(Web3.HTTPProvider(anvil.rpc_url))


@pytest.fixture(scope="session")
def dev_accounts():
    return list(_dev_accounts(6))


def _deploy(w3, dev_accounts):
    from desktop.chain.deploy import coordinator_at, deploy_coordinator

    return coordinator_at(w3, deploy_coordinator(w3, dev_accounts[0][1]))


@pytest.fixture(scope="session")
def coordinator(w3, dev_accounts):
    return _deploy(w3, dev_accounts)


@pytest.fixture
def fresh_coordinator(w3, dev_accounts):
    return _deploy(w3, dev_accounts)


def unique_peer_id() -> str:
    """A peer-id-shaped string nobody else in the session uses."""
    return "Qm" + uuid.uuid4().hex
