"""Deploy the SwarmCoordinator artifact and send signed transactions (web3 8)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from .contract import abi, bytecode


class TransactionFailed(RuntimeError):
    """A mined transaction with status 0."""


def send_signed(w3: Web3, private_key: str, tx: dict[str, Any], *, timeout: float = 30.0,
                poll: float = 0.02) -> Any:
    """Sign ``tx`` (from ``build_transaction``) locally, send it, and wait for its receipt.

    anvil mines at once but answers a null receipt for a moment, hence the short polling.
    """
    signed = Account.from_key(private_key).sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=poll)
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {tx_hash.hex()} reverted")
    return receipt


def deploy_coordinator(w3: Web3, deployer_key: str, *, timeout: float = 30.0) -> str:
    """Deploy a fresh coordinator; the deployer is owner, stage manager and bootnode manager.

    Returns the checksum address.
    """
    deployer = Account.from_key(deployer_key).address
    factory = w3.eth.contract(abi=abi(), bytecode=bytecode())
    tx = factory.constructor().build_transaction({
        "from": deployer,
        "nonce": w3.eth.get_transaction_count(deployer, "pending"),
    })
    receipt = send_signed(w3, deployer_key, tx, timeout=timeout)
    return Web3.to_checksum_address(receipt["contractAddress"])


def coordinator_at(w3: Web3, address: str) -> Contract:
    """A contract object for a coordinator (ours or the public one: same ABI)."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi())
