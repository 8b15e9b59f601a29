"""The desktop app (PySide6 + qasync). Never imports torch, transformers or hivemind: the node and
the local services run in subprocesses and talk to the app through desktop.events."""

import sys


def protect_singletons() -> None:
    """Work around a PySide6 6.12 bug on Python 3.11: every call of a method returning void drops
    one reference to None (and some to True/False) it never took, so after a few thousand calls
    the interpreter aborts with "deallocating None". Python 3.12 made these objects immortal; here
    we do the same by giving them a reference count that no session can use up. Idempotent."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    for obj in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is a PyObject's first field
        if refcount.value < 1 << 40:
            refcount.value += 1 << 40


protect_singletons()  # before any Qt call: every GUI module imports this package first
