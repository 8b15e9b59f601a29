"""The local coordinator chain: the SwarmCoordinator artifact, an anvil launcher and deployment.

``contract`` (json/hashlib only) loads eagerly; ``anvil`` and ``deploy`` pull in eth-account and
web3 when first used.
"""

from .contract import ARTIFACT_PATH, SOURCE_PATH, abi, bytecode, load_artifact, revert_name

_LAZY = {
    "Anvil": "anvil", "AnvilError": "anvil", "AnvilNotFound": "anvil", "find_anvil": "anvil",
    "dev_accounts": "anvil", "dev_private_keys": "anvil", "DEV_MNEMONIC": "anvil",
    "deploy_coordinator": "deploy", "coordinator_at": "deploy", "send_signed": "deploy",
    "TransactionFailed": "deploy",
}

__all__ = ["ARTIFACT_PATH", "SOURCE_PATH", "abi", "bytecode", "load_artifact", "revert_name", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
