"""The GUI process must stay light: importing any module of desktop.gui never loads the ML stack."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gui

HEAVY = ("torch", "transformers", "hivemind")

_PROBE = r"""
import importlib, json, pkgutil, sys
import desktop.gui
names = ["desktop.gui"] + [m.name for m in pkgutil.walk_packages(desktop.gui.__path__, "desktop.gui.")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, not hidden: every module must import
        failed[name] = repr(exc)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"modules": names, "failed": failed, "heavy": heavy}))
"""


@pytest.mark.slow
def test_every_gui_module_imports_without_the_ml_stack():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    code = f"HEAVY = {HEAVY!r}\n" + _PROBE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # the walk really found the app's modules, not just the package
    for expected in ("desktop.gui.app", "desktop.gui.shell.main_window", "desktop.gui.pages.dashboard",
                     "desktop.gui.pages.logs", "desktop.gui.shell.tray", "desktop.gui.widgets.charts"):
        assert expected in report["modules"]
    assert report["failed"] == {}
    assert report["heavy"] == [], f"the GUI imported {report['heavy']}"
