"""RoundKeeper: the local stage manager, on a real anvil with a freshly deployed coordinator."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from desktop.chain.client import ChainError
from desktop.chain.deploy import send_signed
from desktop.services.round_keeper import RoundKeeper
from tests.chain_fixtures import unique_peer_id


def tx(w3, key, call):
    from eth_account import Account

    sender = Account.from_key(key).address
    return send_signed(w3, key, call.build_transaction(
        {"from": sender, "nonce": w3.eth.get_transaction_count(sender, "pending")}))


def rounds(contract) -> tuple[int, int]:
    return contract.functions.currentRound().call(), contract.functions.currentStage().call()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_advance_once_and_callback(w3, dev_accounts, fresh_coordinator):
    seen = []
    keeper = RoundKeeper(w3, fresh_coordinator.address, dev_accounts[0][1], period=None,
                         on_advance=lambda r, s: seen.append((r, s)))
    assert keeper.advance() == (1, 0)
    assert keeper.advance() == (2, 0)
    assert seen == [(1, 0), (2, 0)]
    assert rounds(fresh_coordinator) == (2, 0)


@pytest.mark.slow
def test_advances_on_schedule(anvil, dev_accounts, fresh_coordinator):
    seen = []
    done = threading.Event()

    def on_advance(r, s):
        seen.append((r, s))
        if len(seen) >= 3:
            done.set()

    keeper = RoundKeeper(anvil.rpc_url, fresh_coordinator.address, dev_accounts[0][1],
                         period=0.3, advance_when_all_submitted=False, poll=0.05,
                         on_advance=on_advance)
    started = time.monotonic()
    with keeper:
        assert keeper.running
        assert done.wait(10)
    elapsed = time.monotonic() - started
    assert not keeper.running
    assert seen[:3] == [(1, 0), (2, 0), (3, 0)]
    assert elapsed >= 0.85  # three periods, not a busy loop
    assert rounds(fresh_coordinator)[0] == len(seen)


@pytest.mark.slow
def test_advances_early_when_every_registered_account_submitted(w3, dev_accounts, fresh_coordinator):
    c = fresh_coordinator
    (_, k0), (a1, k1), (a2, k2) = dev_accounts[:3]
    keeper = RoundKeeper(w3, c.address, k0, period=None, poll=0.05)
    assert keeper.registered_accounts() == []
    assert keeper.step() is None  # nobody plays: no rush
    p1, p1b, p2 = unique_peer_id(), unique_peer_id(), unique_peer_id()
    tx(w3, k1, c.functions.registerPeer(p1))
    tx(w3, k1, c.functions.registerPeer(p1b))  # account 1 runs two peers: counted once
    tx(w3, k2, c.functions.registerPeer(p2))
    assert keeper.registered_accounts() == [a1, a2]
    tx(w3, k1, c.functions.submitReward(0, 0, 4, p1))
    assert not keeper.all_submitted()
    assert keeper.step() is None
    assert rounds(c) == (0, 0)
    seen = []
    keeper.on_advance = lambda r, s: seen.append((r, s))
    with keeper:
        tx(w3, k2, c.functions.submitReward(0, 0, 2, p2))
        assert wait_for(lambda: seen)
        time.sleep(0.3)  # round 1: nobody has submitted yet, so no further advance
    assert seen == [(1, 0)]
    assert rounds(c) == (1, 0)
    # A later registration is picked up by the incremental log scan.
    p3 = unique_peer_id()
    tx(w3, dev_accounts[3][1], c.functions.registerPeer(p3))
    assert keeper.registered_accounts() == [a1, a2, dev_accounts[3][0]]


def test_schedule_and_early_rule_together(w3, dev_accounts, fresh_coordinator):
    c = fresh_coordinator
    (_, k0), (_, k1) = dev_accounts[:2]
    p1 = unique_peer_id()
    tx(w3, k1, c.functions.registerPeer(p1))
    keeper = RoundKeeper(w3, c.address, k0, period=60.0, poll=0.05)
    with keeper:
        tx(w3, k1, c.functions.submitReward(0, 0, 1, p1))
        assert wait_for(lambda: rounds(c) == (1, 0), timeout=5)  # long before the period


def test_only_the_stage_manager_can_advance(w3, dev_accounts, fresh_coordinator):
    keeper = RoundKeeper(w3, fresh_coordinator.address, dev_accounts[1][1], period=0.0)
    with pytest.raises(ChainError) as info:
        keeper.advance()
    assert info.value.kind == "revert:OnlyStageManager"
    assert info.value.revert == "OnlyStageManager"
    assert keeper.step() is None  # the background loop records it instead of dying
    assert keeper.last_error.kind == "revert:OnlyStageManager"
    assert rounds(fresh_coordinator) == (0, 0)


def test_rpc_down_is_recorded_not_raised(dev_accounts):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    keeper = RoundKeeper(url, "0x" + "22" * 20, dev_accounts[0][1], period=0.0, timeout=2)
    assert keeper.step() is None
    assert keeper.last_error.kind == "unreachable"
    with pytest.raises(ChainError) as info:
        keeper.advance()
    assert info.value.kind == "unreachable"
