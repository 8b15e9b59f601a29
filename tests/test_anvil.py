"""The anvil launcher: finding the binary, start/stop, dev accounts, state across restarts."""

from __future__ import annotations

import re
import socket
import sys

import pytest

from desktop.chain import anvil as anvil_mod
from desktop.chain.anvil import Anvil, AnvilError, AnvilNotFound, dev_accounts, find_anvil, rpc_call

# anvil's first default account: a public, well-known test key.
FIRST_DEV_ACCOUNT = ("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                     "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv(anvil_mod.ENV_OVERRIDE, raising=False)


@pytest.fixture
def binary(no_override):
    try:
        return find_anvil()
    except AnvilNotFound as exc:
        pytest.skip(str(exc))


def _rel_binary():
    name = "anvil.exe" if sys.platform == "win32" else "anvil"
    return ("node_modules", "@foundry-rs", anvil_mod.platform_package(), "bin", name)


def test_platform_package_name():
    assert re.fullmatch(r"anvil-(linux|darwin|win32)-(amd64|arm64)", anvil_mod.platform_package())


def test_find_anvil_in_the_checkout(binary):
    assert binary == anvil_mod.REPO_ROOT.joinpath(*_rel_binary())


def test_find_anvil_missing_says_how_to_install(no_override, tmp_path):
    with pytest.raises(AnvilNotFound) as info:
        find_anvil([tmp_path])
    message = str(info.value)
    assert "npm ci" in message
    assert "make setup" in message
    assert str(tmp_path) in message


def test_find_anvil_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(anvil_mod.ENV_OVERRIDE, str(tmp_path / "nope" / "anvil"))
    with pytest.raises(AnvilNotFound, match=anvil_mod.ENV_OVERRIDE):
        find_anvil()
    fake = tmp_path / "my-anvil"
    fake.write_bytes(b"")
    monkeypatch.setenv(anvil_mod.ENV_OVERRIDE, str(fake))
    assert find_anvil() == fake


def test_find_anvil_in_a_frozen_app(no_override, monkeypatch, tmp_path):
    bundled = tmp_path.joinpath(*_rel_binary())
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert find_anvil() == bundled  # the bundle wins over the checkout


def test_dev_accounts_are_the_funded_ones(binary):
    accounts = dev_accounts(3)
    assert accounts[0] == FIRST_DEV_ACCOUNT
    with Anvil(binary).start() as node:
        listed = node.rpc("eth_accounts")
        assert [a.lower() for a, _ in accounts] == listed[:3]
        assert int(node.rpc("eth_getBalance", [accounts[2][0], "latest"]), 16) > 10**21


def test_start_and_stop(binary):
    node = Anvil(binary).start()
    try:
        assert node.running
        assert node.port
        assert node.rpc_url.startswith("http://127.0.0.1:")
        assert int(rpc_call(node.rpc_url, "eth_chainId"), 16) == 31337
    finally:
        assert node.stop() is not None
    assert not node.running
    assert node.stop() is None
    with pytest.raises(AnvilError):
        node.rpc_url


def test_chain_id_and_fixed_port(binary):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Anvil(binary).start(port=port, chain_id=685685) as node:
        assert node.port == port
        assert int(node.rpc("eth_chainId"), 16) == 685685


def test_context_manager_starts_and_stops(binary):
    with Anvil(binary) as node:
        assert node.running
        with pytest.raises(AnvilError, match="already running"):
            node.start()
    assert not node.running


@pytest.mark.slow
def test_port_in_use_is_an_error(binary):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(AnvilError, match="exited"):
            Anvil(binary).start(port=sock.getsockname()[1], timeout=10)


def test_a_broken_binary_is_an_error(tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text("not a program")
    fake.chmod(0o644)
    with pytest.raises(AnvilError, match="cannot run"):
        Anvil(fake).start(timeout=5)


def test_state_survives_a_restart(binary, tmp_path):
    from web3 import Web3

    from desktop.chain.deploy import coordinator_at, deploy_coordinator

    state = tmp_path / "chain" / "state.json"
    (addr1, key1), (addr2, _) = dev_accounts(2)
    node = Anvil(binary).start(state_file=state)
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        address = deploy_coordinator(w3, key1)
        c = coordinator_at(w3, address)
        for fn, sender in ((c.functions.registerPeer("QmSurvivor"), addr2),
                           (c.functions.updateStageAndRound(), addr1),
                           (c.functions.addBootnodes(["/ip4/127.0.0.1/tcp/1"]), addr1)):
            w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}), poll_latency=0.01)
    finally:
        node.stop()
    assert state.is_file()
    assert state.stat().st_size > 0  # written on SIGTERM

    with Anvil(binary).start(state_file=state) as again:
        w3 = Web3(Web3.HTTPProvider(again.rpc_url))
        c = coordinator_at(w3, address)
        assert w3.eth.get_code(address) != b""
        assert c.functions.getEoa(["QmSurvivor"]).call() == [addr2]
        assert c.functions.currentRound().call() == 1
        assert c.functions.getBootnodes().call() == ["/ip4/127.0.0.1/tcp/1"]
        # The chain goes on from there: a fresh deploy does not collide with the old one.
        assert deploy_coordinator(w3, key1) != address
