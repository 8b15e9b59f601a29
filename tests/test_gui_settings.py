"""Settings pages on real files: config YAML, gui.ini, autostart entry, token file, backups."""

import json
import logging
import os
import plistlib
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from desktop.gui.context import AppContext  # noqa: E402
from desktop.gui.settings import (AboutPage, AccountPage, GeneralPage,  # noqa: E402
                                  HuggingFacePage, IdentityPage, NodePage, SettingsWidget)
from desktop.gui.settings.general import autostart_enabled, autostart_path, set_autostart  # noqa: E402
from desktop.gui.settings.huggingface import read_hf_token  # noqa: E402
from desktop.identity import create_identity  # noqa: E402
from desktop.identity.backup import BackupError, export_backup  # noqa: E402

TOKEN = "hf_TopSecretToken123"
COMMAND = ["/opt/RL Swarm/bin/rl-swarm", "gui", "--data-dir", "/tmp/a b"]


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    import keyring
    from keyring.backends import fail

    # No real keyring, ever: like a headless Linux box, and never the developer's own.
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield AppContext.create(tmp_path / "peer")
    keyring.set_keyring(previous)


def _widget(qtbot, ctx, **kw):
    w = SettingsWidget(ctx, autostart_command=COMMAND, **kw)
    qtbot.addWidget(w)
    return w


def test_round_trip_through_disk(qtbot, ctx, caplog):
    caplog.set_level(logging.DEBUG)
    w = _widget(qtbot, ctx)
    general, node, hf = w.page(GeneralPage), w.page(NodePage), w.page(HuggingFacePage)
    general.start_at_login.setChecked(True)
    general.close_to_tray.setChecked(False)
    node.pool.setCurrentIndex(node.pool.findData("custom"))
    node.model_name.setText("Qwen/Qwen2.5-Coder-0.5B-Instruct")
    node.num_generations.setValue(4)
    node.max_new_tokens.setValue(128)
    node.learning_rate.setText("3e-6")
    node.temperature.setValue(0.7)
    node.dtype.setCurrentText("bfloat16")
    node.device.setCurrentText("cpu")
    hf.token.setText(TOKEN)
    hf.user.setText("me")
    hf.push.setChecked(True)
    assert w.save(), w.message.text()

    on_disk = yaml.safe_load(ctx.paths.config_file.read_text())
    assert (on_disk["model"]["name"], on_disk["model"]["dtype"], on_disk["model"]["device"]) == \
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "bfloat16", "cpu")
    assert on_disk["training"]["num_generations"] == 4
    assert on_disk["training"]["max_new_tokens"] == 128
    assert on_disk["training"]["learning_rate"] == pytest.approx(3e-6)
    assert on_disk["training"]["temperature"] == pytest.approx(0.7)
    assert on_disk["hf"]["push"] is True
    assert on_disk["hf"]["user"] == "me"

    # the token: in an owner-only file, nowhere in config, ini or logs
    token_file = ctx.paths.data / "secrets" / "hf_token"
    assert token_file.read_text() == TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for path in [*ctx.paths.config.rglob("*"), *ctx.paths.logs.rglob("*")]:
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in caplog.text
    assert read_hf_token(ctx) == TOKEN

    entry = autostart_path()
    assert str(entry).startswith(os.environ["XDG_CONFIG_HOME"])
    text = entry.read_text()
    assert 'Exec="/opt/RL Swarm/bin/rl-swarm" gui --data-dir "/tmp/a b"' in text
    assert "close_to_tray=false" in ctx.gui_settings_file().read_text()

    w2 = _widget(qtbot, ctx)  # a fresh widget loads what is on disk
    g2, n2, h2 = w2.page(GeneralPage), w2.page(NodePage), w2.page(HuggingFacePage)
    assert g2.start_at_login.isChecked()
    assert not g2.close_to_tray.isChecked()
    assert n2.pool.currentData() == "custom"
    assert n2.model_name.isEnabled()
    assert n2.model_name.text() == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert (n2.num_generations.value(), n2.max_new_tokens.value()) == (4, 128)
    assert float(n2.learning_rate.text()) == pytest.approx(3e-6)
    assert n2.temperature.value() == pytest.approx(0.7)
    assert (n2.dtype.currentText(), n2.device.currentText()) == ("bfloat16", "cpu")
    assert (h2.token.text(), h2.user.text(), h2.push.isChecked()) == (TOKEN, "me", True)

    # back to a pool, autostart off, token removed
    g2.start_at_login.setChecked(False)
    n2.pool.setCurrentIndex(n2.pool.findData("tiny"))
    h2.push.setChecked(False)
    h2.token.setText("")
    assert w2.save(), w2.message.text()
    assert not entry.exists()
    assert not autostart_enabled()
    assert not token_file.exists()
    assert read_hf_token(ctx) is None
    model = yaml.safe_load(ctx.paths.config_file.read_text())["model"]
    assert (model["pool"], model.get("name")) == ("tiny", None)  # name is back to its default: not written


def test_only_changed_settings_are_written(qtbot, ctx):
    w = _widget(qtbot, ctx)
    w.page(NodePage).max_new_tokens.setValue(200)
    assert w.save(), w.message.text()
    on_disk = yaml.safe_load(ctx.paths.config_file.read_text())
    assert on_disk == {"version": 2, "training": {"max_new_tokens": 200}}  # later defaults still reach the rest


def test_an_older_file_is_upgraded_on_save_and_keeps_every_setting(qtbot, ctx):
    ctx.paths.config.mkdir(parents=True, exist_ok=True)
    ctx.paths.config_file.write_text("game:\n  round_source: chain\nports:\n  dht: 4001\n  login: 3100\n"
                                     "training:\n  learning_rate: 3e-4\n")  # version 1: no version key
    w = _widget(qtbot, ctx)
    assert w.message.text() == ""  # read without complaint
    assert w.page(NodePage).learning_rate.text() == "0.0003"
    w.page(NodePage).max_new_tokens.setValue(100)
    assert w.save(), w.message.text()
    on_disk = yaml.safe_load(ctx.paths.config_file.read_text())
    assert on_disk == {"version": 2, "training": {"max_new_tokens": 100, "learning_rate": 3e-4},
                       "ports": {"login": 3100}}


def test_spin_box_ranges_are_the_configs_limits(qtbot, ctx):
    from desktop.config import TrainingConfig
    w = _widget(qtbot, ctx)  # held: the page's widgets live as long as the window
    node = w.page(NodePage)
    fields = TrainingConfig.model_fields
    for name in ("num_generations", "max_new_tokens"):
        box, rules = getattr(node, name), {type(r).__name__: r for r in fields[name].metadata}
        assert (box.minimum(), box.maximum()) == (rules["Ge"].ge, rules["Le"].le), name
    assert 0 < node.temperature.minimum() <= 0.01
    assert node.temperature.maximum() == 10


def test_a_config_with_errors_is_shown_and_never_overwritten(qtbot, ctx):
    ctx.paths.config.mkdir(parents=True, exist_ok=True)
    broken = "training:\n  num_generations: 1   # hand-edited, below the minimum\n  learning_rate: 3e-4\n"
    ctx.paths.config_file.write_text(broken)
    w = _widget(qtbot, ctx)
    assert "num_generations" in w.message.text()
    assert "nothing will be saved" in w.message.text()
    w.page(NodePage).max_new_tokens.setValue(100)
    assert not w.save()
    assert "Not saved" in w.message.text()
    assert ctx.paths.config_file.read_text() == broken
    ctx.paths.config_file.write_text("training:\n  learning_rate: 3e-4\n")  # fixed by hand
    w.load()
    assert w.message.text() == ""
    assert w.save()
    assert yaml.safe_load(ctx.paths.config_file.read_text())["training"]["learning_rate"] == pytest.approx(3e-4)


def test_revert_and_validation_keep_the_file(qtbot, ctx):
    w = _widget(qtbot, ctx)
    node, hf = w.page(NodePage), w.page(HuggingFacePage)
    assert w.save()
    before = ctx.paths.config_file.read_text()

    node.learning_rate.setText("fast")
    assert not w.save()
    assert "learning rate" in w.message.text()
    assert w.stack.currentWidget() is node
    node.learning_rate.setText("1e-5")
    node.device.setCurrentText("gpu please")
    assert not w.save()
    assert "device" in w.message.text()
    node.device.setCurrentText("cpu")
    hf.push.setChecked(True)  # push without a token
    assert not w.save()
    assert "token" in w.message.text()
    assert ctx.paths.config_file.read_text() == before  # nothing half-saved

    w.revert_button.click()
    assert node.learning_rate.text() == "1e-06"
    assert not hf.push.isChecked()


def test_autostart_entry_linux_disabled_and_macos(ctx, tmp_path):
    set_autostart(True, ["rl-swarm", "gui"])
    assert autostart_enabled()
    entry = autostart_path()
    entry.write_text(entry.read_text() + "Hidden=true\n")  # a desktop's own "disable"
    assert not autostart_enabled()
    set_autostart(False, [])
    assert not entry.exists()

    set_autostart(True, COMMAND, platform="darwin")
    plist = autostart_path("darwin")
    assert plist.is_relative_to(tmp_path / "home" / "Library" / "LaunchAgents")
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"] == COMMAND
    assert autostart_enabled("darwin")
    set_autostart(False, COMMAND, platform="darwin")
    assert not autostart_enabled("darwin")


@pytest.mark.slow
def test_identity_page_export_and_confirmed_import(qtbot, ctx, tmp_path):
    current = create_identity(ctx.paths.identity)
    other = create_identity(tmp_path / "elsewhere" / "swarm.pem")
    asked, answers = [], [False, True]

    def confirm(text):
        asked.append(text)
        return answers.pop(0)

    page = IdentityPage(ctx, confirm=confirm)
    qtbot.addWidget(page)
    page.load()
    assert page.name.text() == current.name
    assert page.peer_id.text() == current.peer_id
    page.copy_peer_id()

    plain = page.export_to(tmp_path / "mine.pem", None)
    assert plain.read_bytes() == current.path.read_bytes()
    backup = export_backup(other.path, tmp_path / "other.rlbackup", "long passphrase")
    old = current.path.read_bytes()

    with pytest.raises(BackupError, match="Wrong passphrase"):
        page.import_from(backup, "not it")
    assert asked == []  # a bad backup never reaches the question

    assert page.import_from(backup, "long passphrase") is None  # declined
    assert other.name in asked[0]
    assert other.peer_id in asked[0]
    assert current.name in asked[0]
    assert current.path.read_bytes() == old
    assert len(list(current.path.parent.iterdir())) == 1

    with qtbot.waitSignal(page.identity_changed) as sig:
        result = page.import_from(backup, "long passphrase")
    assert sig.args == [other.peer_id, other.name]
    assert result.previous_backup.read_bytes() == old
    assert result.previous_backup.name.startswith("swarm.pem.")
    assert result.previous_backup.suffix == ".bak"
    assert current.path.read_bytes() == other.path.read_bytes()
    assert page.name.text() == other.name

    # the same key again: nothing asked, nothing moved
    again = page.import_from(backup, "long passphrase")
    assert not again.changed
    assert len(asked) == 2


@pytest.mark.slow
def test_identity_page_buttons_report_errors(qtbot, ctx, tmp_path):
    create_identity(ctx.paths.identity)
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_bytes(b"\x08\x00\x12\xff\x01garbage")
    picks = iter([corrupt, tmp_path / "enc.rlbackup"])
    page = IdentityPage(ctx, confirm=lambda _: pytest.fail("must not ask"),
                        ask_passphrase=lambda _: "wrong passphrase",
                        choose_import_path=lambda: next(picks),
                        choose_export_path=lambda suggested: tmp_path / "enc.rlbackup")
    qtbot.addWidget(page)
    page.load()
    page.import_button.click()  # checked on a pool thread: wait for its answer
    qtbot.waitUntil(lambda: not page.busy, timeout=10000)
    assert "Not a usable swarm key" in page.status.text()

    page.encrypt.setChecked(True)
    page.passphrase.setText("long passphrase")
    page.passphrase_again.setText("long passphrasf")
    page.export_button.click()
    assert "differ" in page.status.text()
    assert not (tmp_path / "enc.rlbackup").exists()
    page.passphrase_again.setText("long passphrase")
    page.export_button.click()
    assert "encrypted backup" in page.status.text()
    page.import_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=10000)
    assert "Wrong passphrase" in page.status.text()


@pytest.mark.slow
def test_identity_page_import_button_works_off_the_gui_thread(qtbot, ctx, tmp_path):
    current = create_identity(ctx.paths.identity)
    other = create_identity(tmp_path / "elsewhere" / "swarm.pem")
    backup = export_backup(other.path, tmp_path / "other.rlbackup", "long passphrase")
    old = current.path.read_bytes()
    asked_on = []

    def confirm(text):
        asked_on.append(threading.current_thread())
        assert other.name in text
        return True

    page = IdentityPage(ctx, confirm=confirm, ask_passphrase=lambda _: "long passphrase",
                        choose_import_path=lambda: backup)
    qtbot.addWidget(page)
    page.load()
    changed = []
    page.identity_changed.connect(lambda *args: changed.append(args))
    page.import_button.click()
    # the click returned before scrypt ran: the page says it is checking and takes no second import
    assert page.status.text().startswith("Checking")
    assert page.busy
    assert not page.import_button.isEnabled()
    assert not page.export_button.isEnabled()
    assert current.path.read_bytes() == old
    qtbot.waitUntil(lambda: bool(changed), timeout=10000)
    assert changed == [(other.peer_id, other.name)]
    assert asked_on == [threading.main_thread()]  # dialogs only ever on the GUI thread
    assert current.path.read_bytes() == other.path.read_bytes()
    assert [p.read_bytes() for p in current.path.parent.glob("swarm.pem.*.bak")] == [old]
    assert page.name.text() == other.name
    assert other.name in page.status.text()
    assert page.import_button.isEnabled()
    assert page.export_button.isEnabled()
    assert not page.busy


@pytest.mark.slow
def test_identity_page_refuses_a_crafted_kdf_without_running_it(qtbot, ctx, tmp_path):
    current = create_identity(ctx.paths.identity)
    good = export_backup(current.path, tmp_path / "good.rlbackup", "long passphrase").read_bytes()
    body = json.loads(good.split(b"\n", 1)[1])
    body["kdf"].update(n=2 ** 20, r=32, p=16)  # 4 GiB of scrypt if it were trusted
    crafted = tmp_path / "crafted.rlbackup"
    crafted.write_bytes(good.split(b"\n", 1)[0] + b"\n" + json.dumps(body).encode())
    page = IdentityPage(ctx, confirm=lambda _: pytest.fail("must not ask"),
                        ask_passphrase=lambda _: "long passphrase", choose_import_path=lambda: crafted)
    qtbot.addWidget(page)
    page.load()
    before = current.path.read_bytes()
    page.import_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=2000)
    assert "never writes" in page.status.text()
    assert current.path.read_bytes() == before
    assert page.import_button.isEnabled()


class _StatusHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"signedIn": True, "email": "net@example.com", "address": "0xabc",
                           "orgId": "o1", "peers": ["QmPeer"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_account_page_file_network_and_logout(qtbot, ctx):
    user_data = ctx.paths.data / "login" / "userData.json"
    user_data.parent.mkdir(parents=True)
    user_data.write_text(json.dumps({"o1": {"orgId": "o1", "address": "0xabc", "userId": "u",
                                            "email": "me@example.com"}}))
    page = AccountPage(ctx, on_logout=lambda: user_data.unlink())
    qtbot.addWidget(page)
    page.load()
    assert (page.state.text(), page.email.text()) == ("Signed in", "me@example.com")
    assert page.logout.isEnabled()
    page.logout.click()
    assert page.state.text() == "Signed out"
    assert not page.logout.isEnabled()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.status_url = f"http://127.0.0.1:{server.server_port}/login/status"
        page.refresh()
        qtbot.waitUntil(lambda: page.email.text() == "net@example.com", timeout=5000)
        assert page.peers.text() == "QmPeer"
    finally:
        server.shutdown()
        server.server_close()


def test_about_page_versions_and_folders(qtbot, ctx):
    opened = []
    w = _widget(qtbot, ctx, open_folder=opened.append)
    about = w.page(AboutPage)
    import desktop
    assert desktop.__version__ in about.version_text()
    assert "Qt" in about.version_text()
    about.open_buttons["Logs"].click()
    assert opened == [ctx.paths.logs]
    assert [p.title for p in w.pages] == ["General", "Node", "Resources", "Identity", "Account",
                                          "Hugging Face", "About"]


@pytest.mark.slow
def test_gui_modules_stay_light():
    """The GUI process never loads the training stack."""
    import subprocess
    import sys

    code = ("import sys, desktop.gui.settings, desktop.gui.dialogs.first_run, desktop.gui.login_view, "
            "desktop.identity.backup; heavy = [m for m in ('torch', 'transformers', 'hivemind') "
            "if m in sys.modules] + [m for m in sys.modules if m.startswith(('desktop.node', "
            "'desktop.swarm'))]; print(heavy); sys.exit(bool(heavy))")
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_node_environment_carries_the_stored_token(ctx):
    from desktop.gui.settings.huggingface import hf_token_store, node_env

    assert node_env(ctx) == {}  # no token: nothing added
    hf_token_store(ctx).set(TOKEN)
    assert node_env(ctx) == {"HF_TOKEN": TOKEN}
    ctx.paths.config.mkdir(parents=True, exist_ok=True)
    ctx.paths.config_file.write_text("hf:\n  token_env: MY_HF\n")
    assert node_env(ctx) == {"MY_HF": TOKEN}  # under the variable the config names
