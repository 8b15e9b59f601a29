"""scipy stands in for itself in the bundle, which leaves it out (60 MB of the 1 GB goal).

Nothing the node runs uses scipy: hivemind imports ``scipy.optimize`` at package import for its
averager's load balancing (the node only uses the DHT), and transformers imports names from it
for object-detection losses. Both only need the import to succeed. ``install()`` answers every
``scipy`` import with a placeholder whose attributes are functions that raise a clear error when
called, so an import works and a real use says what is missing instead of doing something else.
Installed by the bundle's entry point only, and only when scipy cannot be found.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

ABSENT = "scipy is not part of this build of RL Swarm Desktop (the node never needs it): {name}"


class _Placeholder(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # dunder lookups (copy, pickle, inspect) see a plain module
            raise AttributeError(attr)
        name = f"{self.__name__}.{attr}"

        def absent(*args, **kwargs):
            raise RuntimeError(ABSENT.format(name=name))

        absent.__name__ = attr
        absent.__qualname__ = name
        return absent


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "scipy" and not fullname.startswith("scipy."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _Placeholder(spec.name)
        module.__path__ = []  # a package: `import scipy.optimize` finds its submodules here
        return module

    def exec_module(self, module) -> None:
        pass


def install() -> bool:
    """Answer scipy imports with placeholders when the real scipy is not there; True if installed."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return True
    if importlib.util.find_spec("scipy") is not None:
        return False
    sys.meta_path.append(_Finder())  # last: a scipy that appears later on the path still wins
    return True
