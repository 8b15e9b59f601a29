"""Send coordinator transactions for local accounts (async web3, inside the login server's loop).

Each account's transactions are serialized by an asyncio lock from nonce choice to send, and the
next nonce is remembered, so concurrent requests from several peers of one account never reuse a
nonce; the receipt is awaited outside the lock so those transactions still pipeline on a real chain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from eth_account import Account as EthAccount
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, TimeExhausted

from desktop.chain.contract import abi, revert_name
from desktop.utils.logs import redact


log = logging.getLogger("desktop.services.chain")

FUND_WEI = 10**18           # 1 ETH: thousands of coordinator calls at anvil's gas price
MIN_BALANCE_WEI = 10**17    # top up below 0.1 ETH


class Reverted(Exception):
    """The contract refused the call; ``name`` is its custom error (or ``"ExecutionReverted"``)."""

    def __init__(self, name: str, function: str, detail: str = ""):
        super().__init__(name)
        self.name, self.function, self.detail = name, function, detail

    def meta_messages(self) -> list[str]:
        messages = [f"Error: {self.name}()", f"Contract call: {self.function}"]
        return messages + ([self.detail] if self.detail else [])


class TransactionError(Exception):
    """The chain could not be reached or refused the transaction for a non-contract reason."""


class ChainWriter:
    def __init__(self, rpc_url: str, contract_address: str, *, funder_key: str | None = None,
                 fund_wei: int = FUND_WEI, min_balance_wei: int = MIN_BALANCE_WEI,
                 receipt_timeout: float = 60.0):
        self.w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 15}))
        self.contract = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(contract_address),
                                             abi=abi())
        self._funder_key = funder_key
        self.fund_wei, self.min_balance_wei = fund_wei, min_balance_wei
        self.receipt_timeout = receipt_timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_nonce: dict[str, int] = {}
        self._chain_id: int | None = None

    async def close(self) -> None:
        try:
            await self.w3.provider.disconnect()
        except Exception:  # closing a session that never opened
            pass

    def _lock(self, address: str) -> asyncio.Lock:
        return self._locks.setdefault(address, asyncio.Lock())

    async def _nonce(self, address: str) -> int:
        # Another process may also use this key (the funder is a shared dev account): never go
        # below the chain's pending count.
        pending = await self.w3.eth.get_transaction_count(address, "pending")
        return max(pending, self._next_nonce.get(address, 0))

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = await self.w3.eth.chain_id
        return self._chain_id

    # ---- funding (local chains only: the services command passes a dev key) ----
    async def ensure_funded(self, address: str) -> bool:
        """Top ``address`` up from the funder when it is low. True when a transfer was sent."""
        if not self._funder_key:
            return False
        if await self.w3.eth.get_balance(address) >= self.min_balance_wei:
            return False
        funder = EthAccount.from_key(self._funder_key).address
        tx = {"to": address, "value": self.fund_wei, "gas": 21000,
              "gasPrice": await self.w3.eth.gas_price, "chainId": await self.chain_id()}
        await self._send(self._funder_key, funder, tx, "fund")
        log.info("funded %s with %s wei", address, self.fund_wei)
        return True

    # ---- coordinator calls ----
    async def transact(self, private_key: str, function: str, *args: Any) -> str:
        """Call ``function(*args)`` from the key's EOA; returns the tx hash once mined successfully.

        Raises :class:`Reverted` (at gas estimation or in the mined receipt) or :class:`TransactionError`.
        """
        address = EthAccount.from_key(private_key).address
        try:
            await self.ensure_funded(address)
        except Exception as exc:  # the transaction below reports the real problem, if any
            log.warning("could not fund %s: %s", address, _short(exc))
        call = getattr(self.contract.functions, function)(*args)
        return await self._send(private_key, address, call, function)

    async def _send(self, key: str, address: str, call_or_tx: Any, label: str) -> str:
        try:
            tx, tx_hash = await self._submit(key, address, call_or_tx)
            receipt = await self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=0.05)
        except ContractLogicError as exc:
            raise Reverted(revert_name(exc) or "ExecutionReverted", label, _short(exc)) from None
        except TimeExhausted:
            raise TransactionError(f"{label}: transaction not mined within {self.receipt_timeout:.0f} s") from None
        except Exception as exc:  # connection refused, insufficient funds...
            raise TransactionError(f"{label}: {_short(exc)}") from None
        hex_hash = self.w3.to_hex(tx_hash)
        if receipt["status"] != 1:
            raise await self._explain(tx, address, receipt["blockNumber"], label, hex_hash)
        return hex_hash

    async def _submit(self, key: str, address: str, call_or_tx: Any, attempts: int = 3):
        """Pick the nonce, build (estimating gas, which surfaces reverts), sign and send.

        Another process using the same key (the services' round keeper shares the dev account) can
        take our nonce between read and send: then re-read it and try again.
        """
        for attempt in range(attempts):
            async with self._lock(address):
                nonce = await self._nonce(address)
                if isinstance(call_or_tx, dict):
                    tx = {**call_or_tx, "nonce": nonce}
                else:
                    tx = await call_or_tx.build_transaction({"from": address, "nonce": nonce,
                                                             "chainId": await self.chain_id()})
                signed = EthAccount.from_key(key).sign_transaction(tx)
                try:
                    tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:
                    self._next_nonce.pop(address, None)
                    if attempt + 1 < attempts and _nonce_clash(exc):
                        continue
                    raise
                self._next_nonce[address] = nonce + 1
                return tx, tx_hash
        raise AssertionError("unreachable")

    async def _explain(self, tx: dict, address: str, block: int, label: str, tx_hash: str) -> Reverted:
        """A mined revert carries no data: re-run the call at that block to learn the error."""
        try:
            await self.w3.eth.call({"from": address, "to": tx.get("to"), "data": tx.get("data", "0x"),
                                    "value": tx.get("value", 0)}, block_identifier=block)
        except Exception as exc:
            return Reverted(revert_name(exc) or "ExecutionReverted", label, f"transaction {tx_hash}")
        return Reverted("ExecutionReverted", label, f"transaction {tx_hash}")

    async def bootnodes(self) -> list[str]:
        return list(await self.contract.functions.getBootnodes().call())

    async def owner_of(self, peer_id: str) -> str:
        """The EOA that registered ``peer_id`` (the zero address when nobody did)."""
        return (await self.contract.functions.getEoa([peer_id]).call())[0]


def _nonce_clash(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in ("nonce too low", "replacement transaction underpriced"))


def _short(exc: BaseException, limit: int = 300) -> str:
    text = redact(str(exc) or type(exc).__name__)
    return text if len(text) <= limit else text[:limit] + "…"
