"""The services' chain signed only with keys nobody else knows.

anvil funds ten accounts from a mnemonic printed in every tutorial; a chain whose coordinator
is owned, or whose join desk is paid, by one of those can be taken over by anyone who reaches it
(the hosted swarm's proxy forwards signed transactions). So the services make their own four
keys at random (owner, stage manager, bootnode manager, funder: ``<data>/chain/keys.json``,
0600 in a 0700 folder, never logged), start anvil with no dev accounts, and at every start make
the chain agree with them: roles held by those keys, those keys funded, the default accounts empty.

A chain made before this (its coordinator owned by dev account #0, the dev accounts funded) is
upgraded in place on its first start: the owner slot is rewritten through anvil's admin API
(reached only on 127.0.0.1), the managers are appointed by the new owner, the dev accounts are
emptied. Registrations, rewards, rounds and bootnodes stay where they are.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path

from eth_account import Account

from desktop.chain.anvil import dev_accounts, rpc_call
from desktop.chain.contract import load_artifact
from desktop.chain.deploy import coordinator_at, deploy_coordinator, send_signed
from desktop.services.accounts import write_private
from desktop.utils.fsutil import read_bounded


log = logging.getLogger("desktop.services.chain")

KEYS_FILE = "keys.json"
DEV_ACCOUNT_COUNT = 10               # how many accounts anvil funds from its mnemonic by default
ETH = 10**18
ROLE_FLOOR_WEI, ROLE_TOP_UP_WEI = 10 * ETH, 100 * ETH          # gas for deploys and role calls
FUNDER_FLOOR_WEI, FUNDER_TOP_UP_WEI = 1_000 * ETH, 10_000 * ETH  # pays joiners and local accounts
MAX_KEYS_FILE = 4096


class PrivateChainError(RuntimeError):
    """The chain could not be put under this machine's keys; the message is for the user."""


@dataclass(frozen=True, repr=False)
class ChainKeys:
    owner: str
    stage_manager: str
    bootnode_manager: str
    funder: str

    def address(self, role: str) -> str:
        return Account.from_key(getattr(self, role)).address

    def addresses(self) -> dict[str, str]:
        return {f.name: self.address(f.name) for f in fields(self)}

    def __repr__(self) -> str:  # never a key in a log line or a traceback
        return f"ChainKeys({self.addresses()})"


def _valid_key(value) -> bool:
    return (isinstance(value, str) and len(value) == 66 and value.startswith("0x")
            and all(c in "0123456789abcdef" for c in value[2:].lower()))


def load_or_create_keys(chain_dir: Path) -> ChainKeys:
    """This chain's keys; made at random on the first start. A damaged file is kept aside and new
    keys are made: the roles are taken back at the next step, so nothing on chain is lost."""

    path = Path(chain_dir) / KEYS_FILE
    names = [f.name for f in fields(ChainKeys)]
    if path.exists():
        try:
            data = json.loads(read_bounded(path, MAX_KEYS_FILE).decode("utf-8"))
            if isinstance(data, dict) and all(_valid_key(data.get(n)) for n in names):
                return ChainKeys(**{n: data[n] for n in names})
        except (OSError, ValueError):  # FileTooLarge is a ValueError
            pass
        aside = path.with_name(f"{KEYS_FILE}.damaged-{int(time.time())}")
        path.replace(aside)
        log.error("the chain's key file %s was damaged (kept as %s): new keys take over the roles",
                  path, aside.name)
    keys = ChainKeys(**{n: "0x" + bytes(Account.create().key).hex() for n in names})
    write_private(path, json.dumps({n: getattr(keys, n) for n in names}, indent=1).encode())
    return keys


def _deployment(chain_dir: Path, w3, chain_id: int, owner_key: str) -> tuple[str, bool]:
    """The coordinator's address, and whether it is new: the remembered one if its code is on
    this chain, else a new one."""
    record = chain_dir / "deployment.json"
    if record.is_file():
        try:
            known = json.loads(record.read_text())
            if known.get("chain_id") == chain_id and len(w3.eth.get_code(known["contract"])) > 0:
                return known["contract"], False
            log.warning("remembered coordinator %s is not on this chain: deploying again", known.get("contract"))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable %s: deploying again", record)
    address = deploy_coordinator(w3, owner_key)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"contract": address, "chain_id": chain_id}))
    tmp.replace(record)
    log.info("deployed the coordinator at %s", address)
    return address, True


class _Admin:
    """anvil's admin methods, on 127.0.0.1 only (the hosting proxy never forwards them)."""

    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url

    def balance(self, address: str) -> int:
        return int(rpc_call(self.rpc_url, "eth_getBalance", [address, "latest"]), 16)

    def set_balance(self, address: str, wei: int) -> None:
        rpc_call(self.rpc_url, "anvil_setBalance", [address, hex(wei)])

    def set_slot(self, contract: str, slot: int, address: str) -> None:
        rpc_call(self.rpc_url, "anvil_setStorageAt",
                 [contract, "0x" + format(slot, "064x"), "0x" + address.lower()[2:].rjust(64, "0")])


def _fund_roles(admin: _Admin, keys: ChainKeys) -> None:
    for role, address in keys.addresses().items():
        floor, top_up = (FUNDER_FLOOR_WEI, FUNDER_TOP_UP_WEI) if role == "funder" else (ROLE_FLOOR_WEI, ROLE_TOP_UP_WEI)
        if admin.balance(address) < floor:
            admin.set_balance(address, top_up)


def _take_roles(admin: _Admin, w3, contract_address: str, keys: ChainKeys) -> list[str]:
    """Make ``keys`` the coordinator's owner and managers; returns the roles that moved."""
    coordinator = coordinator_at(w3, contract_address)
    f = coordinator.functions
    mine = keys.addresses()
    moved = []
    if f.owner().call() != mine["owner"]:
        admin.set_slot(contract_address, load_artifact()["storage_slots"]["owner"], mine["owner"])
        if f.owner().call() != mine["owner"]:
            raise PrivateChainError("could not make this machine's key the coordinator's owner")
        moved.append("owner")
    for role, getter, setter in (("stage_manager", f.stageManager, f.setStageManager),
                                 ("bootnode_manager", f.bootnodeManager, f.setBootnodeManager)):
        if getter().call() != mine[role]:
            tx = setter(mine[role]).build_transaction({
                "from": mine["owner"], "nonce": w3.eth.get_transaction_count(mine["owner"], "pending")})
            send_signed(w3, keys.owner, tx)
            moved.append(role)
    return moved


def _empty_dev_accounts(admin: _Admin) -> int:
    emptied = 0
    for address, _ in dev_accounts(DEV_ACCOUNT_COUNT):
        if admin.balance(address) > 0:
            admin.set_balance(address, 0)
            emptied += 1
    return emptied


def secure_chain(rpc_url: str, chain_dir: Path, w3, chain_id: int, keys: ChainKeys) -> str:
    """Deploy or find the coordinator and put the chain under ``keys``; returns its address.
    Idempotent: a chain already in order costs a handful of reads."""
    admin = _Admin(rpc_url)
    try:
        _fund_roles(admin, keys)
        contract, new = _deployment(Path(chain_dir), w3, chain_id, keys.owner)
        moved = _take_roles(admin, w3, contract, keys)
        emptied = _empty_dev_accounts(admin)
        if new:  # a new coordinator's managers are appointed, not moved
            moved = []
    except PrivateChainError:
        raise
    except Exception as exc:  # an RPC error, a revert: the chain is not in order, say so
        raise PrivateChainError(f"could not put the local chain under this machine's keys: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from None
    if moved or emptied:
        log.warning("the local chain was upgraded: %s moved to this machine's own keys, %d public dev "
                    "account(s) emptied", ", ".join(moved) or "no role", emptied)
    dev = {a for a, _ in dev_accounts(DEV_ACCOUNT_COUNT)}
    held = keys.addresses()
    if dev & set(held.values()):  # would mean the random keys are the public ones: impossible, but say it
        raise PrivateChainError("a role of the local chain is held by a public dev account")
    return contract
