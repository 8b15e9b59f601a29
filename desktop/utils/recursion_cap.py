"""Keep Python's recursion limit one that the C stack can hold.

py_ecc (imported by eth_account, so by web3) raises the interpreter's recursion limit to 100,000
when it is imported. With an 8 MB stack that turns a RecursionError into a segfault: a 64 KB
request body of nested brackets, parsed by json, took the whole services process down. This
hook lowers the limit again right after py_ecc's import, whoever imports it and whenever.
Installed by ``desktop/__init__.py``, so every process of ours has it before web3 can load.
"""

from __future__ import annotations

import importlib.abc
import sys

SAFE_LIMIT = 10_000  # deep enough for any real code of ours; a RecursionError, never a crash, at 8 MB


def cap() -> None:
    if sys.getrecursionlimit() > SAFE_LIMIT:
        sys.setrecursionlimit(SAFE_LIMIT)


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "py_ecc":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                run = spec.loader.exec_module

                def exec_module(module, run=run):
                    try:
                        run(module)
                    finally:
                        cap()

                spec.loader.exec_module = exec_module
                return spec
        return None


def install() -> None:
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
    cap()
