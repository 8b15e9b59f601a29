"""Local services: the login server and the accounts it signs for.

Names load lazily so importing the package does not pull in aiohttp, web3 or cryptography.
"""

_LAZY = {
    "LoginServer": "login_server", "serve": "login_server", "ensure_api_token": "login_server",
    "api_token_path": "login_server", "DEFAULT_PORT": "login_server",
    "Account": "accounts", "AccountStore": "accounts", "AccountLocked": "accounts",
    "InvalidEmail": "accounts", "UnknownAccount": "accounts",
    "ChainWriter": "chain_writer", "Reverted": "chain_writer", "ChainError": "chain_writer",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
