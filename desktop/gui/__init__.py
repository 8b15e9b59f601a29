"""The desktop app (PySide6 + qasync). Never imports torch, transformers or hivemind: the node and
the local services run in subprocesses and talk to the app through desktop.events.

    app.py            `rl-swarm gui`: one instance, the QApplication, build_window, --screenshot
    context.py        AppContext: paths, config, gui.ini, the commands that start the children
    flow.py           AppFlow: first run -> local services -> sign-in -> node
    sign_in.py        SignIn: the sign-in page while the local services run and nobody is signed in
    login_view.py     the login server's sign-in page in a QWebEngineView
    update_check.py   "version X is available": the check in a thread, Download (sha256-checked)
    theme.py          light and dark palettes, the stylesheet, tinted icons
    screenshots.py    every page as PNG with a running tiny node
    shell/            the main window, its actions (one owner), menus and tray
    dialogs/          first run, join a swarm, host a swarm
    processes/        the supervised children: node, services, short background commands
    pages/            dashboard.py, swarm.py, logs.py
    settings/         one file per settings page (load()/save()), base.py the contract
    widgets/          cards.py, charts.py, labels.py (ElidedLabel)
"""

import sys


def protect_singletons() -> None:
    """Work around a PySide6 6.12 bug on Python 3.11: every call of a method returning void drops
    one reference to None (and some to True/False) it never took, so after a few thousand calls
    the interpreter aborts with "deallocating None". Python 3.12 made these objects immortal; here
    we do the same by giving them a reference count that no session can use up. Idempotent."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes  # only on the Python this works around

    for obj in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is a PyObject's first field
        if refcount.value < 1 << 40:
            refcount.value += 1 << 40


protect_singletons()  # before any Qt call: every GUI module imports this package first
