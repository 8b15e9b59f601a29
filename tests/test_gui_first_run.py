"""First-run wizard: the real `rl-swarm probe --json` child process, then the written settings."""

import json
import stat
import sys

import pytest
import yaml

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from desktop.gui.context import AppContext  # noqa: E402
from desktop.gui.dialogs.first_run import FirstRunWizard, needs_first_run  # noqa: E402
from desktop.identity import load_identity  # noqa: E402
from desktop.identity.backup import inspect_backup  # noqa: E402


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # never the developer's keyring
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield AppContext.create(tmp_path / "peer")
    keyring.set_keyring(previous)


@pytest.mark.slow
def test_wizard_probes_then_writes_settings_and_identity(qtbot, ctx, tmp_path):
    assert needs_first_run(ctx)
    wizard = FirstRunWizard(ctx, choose_backup_path=lambda suggested: tmp_path / "first.rlbackup")
    qtbot.addWidget(wizard)
    wizard.show()
    pre = wizard.preflight
    assert "Checking" in pre.status.text()
    # a page without a subtitle loses the wizard's header and shows a tiny title: none may
    assert all(wizard.page(i).title() and wizard.page(i).subTitle() for i in wizard.pageIds())
    qtbot.waitUntil(lambda: pre.result is not None or pre.again.isEnabled(), timeout=90_000)
    assert pre.result is not None, pre.status.text()

    # every check the probe made is on screen with a verdict, plus the chosen pool
    names = {c["name"] for c in pre.result["checks"]}
    assert {"ram", "disk", "gpu"} <= names
    assert set(pre.rows) == names | {"pool"}
    for name, (verdict, message) in pre.rows.items():
        assert verdict in ("OK", "Warning", "Problem")
        assert message
    assert pre.result["pool"] in pre.rows["pool"][1]
    assert pre.result["pool"] in wizard.model.pool.itemText(0)

    wizard.next()
    wizard.profile.testnet.setChecked(True)
    wizard.next()
    model = wizard.model
    model.pool.setCurrentIndex(model.pool.findData("custom"))
    assert not model.isComplete()  # a custom model needs a name
    model.model_name.setText("my-org/my-coder")
    assert model.isComplete()
    wizard.next()
    wizard.hf.token.setText("hf_FirstRunToken")
    assert wizard.hf.push.isChecked()
    wizard.next()

    page = wizard.identity
    assert page.created
    assert page.identity.name in page.info.text()
    assert load_identity(ctx.paths.identity).peer_id == page.identity.peer_id
    page.encrypt.setChecked(True)
    page.passphrase.setText("short")
    page.backup_button.click()
    assert "at least 8" in page.status.text()
    page.passphrase.setText("a long passphrase")
    page.backup_button.click()
    assert "Backup saved" in page.status.text()
    assert inspect_backup(tmp_path / "first.rlbackup", "a long passphrase").peer_id == page.identity.peer_id

    with qtbot.waitSignal(wizard.completed):
        wizard.accept()
    cfg = yaml.safe_load(ctx.paths.config_file.read_text())
    assert cfg["profile"] == "testnet"
    assert cfg["model"]["name"] == "my-org/my-coder"
    assert cfg["hf"]["push"] is True
    assert "hf_FirstRunToken" not in ctx.paths.config_file.read_text()
    token_file = ctx.paths.data / "secrets" / "hf_token"
    assert token_file.read_text() == "hf_FirstRunToken"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert not needs_first_run(ctx)


def test_a_broken_probe_is_reported_not_fatal(qtbot, ctx):
    bad = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no probe\\n'); sys.exit(3)"]
    wizard = FirstRunWizard(ctx, probe_command=bad)
    qtbot.addWidget(wizard)
    with qtbot.waitSignal(wizard.preflight.failed, timeout=20_000) as failed:
        wizard.show()
    assert "boom: no probe" in failed.args[0]
    assert "still go on" in wizard.preflight.status.text()
    assert wizard.preflight.again.isEnabled()

    # show_result copes with what a future probe might send (unknown names and levels)
    wizard.preflight.show_result({"pool": "tiny", "pool_reason": "chosen", "checks": [
        {"name": "npu", "ok": True, "level": "shiny", "message": json.dumps({"x": 1})}]})
    assert wizard.preflight.rows["npu"][0] == "Warning"
    assert "tiny" in wizard.model.pool.itemText(0)


_THEME_SWITCH = r"""
import sys, tempfile
from pathlib import Path
import desktop.gui
from desktop.gui.app import build_window, create_app
from desktop.gui.context import AppContext
from desktop.gui.dialogs.first_run import FirstRunWizard
app = create_app()
ctx = AppContext.create(Path(tempfile.mkdtemp()))
window = build_window(ctx, app)  # its ThemeManager, as the app has
wizard = FirstRunWizard(ctx, window, probe_command=[sys.executable, "-c", "print('{}')"])
wizard.show()
app.processEvents()
for choice in ("dark", "light", "dark", "system"):
    window.set_appearance(choice)
    app.processEvents()
print("switched", flush=True)
"""


@pytest.mark.slow
def test_switching_the_theme_with_the_wizard_open_does_not_crash(tmp_path):
    # in a child: the crash this guards against (a new QStyle per switch) killed the process
    import os
    import subprocess
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _THEME_SWITCH], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "switched" in proc.stdout
