"""The first-run wizard: check the computer, pick a profile and model, make the identity.

The hardware check runs `rl-swarm probe --json` in a child process (it imports torch, which the
app never does), so the window stays responsive while it works; every verdict is shown with its
reason. Nothing is written until Finish, except the identity, which is created on its page so
the user can back it up right there (rl-swarm users lose swarm.pem on reinstall).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout,
                               QGridLayout, QLabel, QLineEdit, QPushButton, QRadioButton, QStyle,
                               QVBoxLayout, QWizard, QWizardPage)

from desktop.utils.frozen import FROZEN, self_command
from desktop.gui.context import AppContext
from desktop.gui.settings.general import gui_settings
from desktop.gui.settings.huggingface import hf_token_store
from desktop.gui.settings.identity import identity_path
from desktop.identity import Identity, IdentityError, load_or_create_identity
from desktop.identity.backup import BackupError, export_backup

KEY_DONE = "first_run/done"
VERDICT = {"ok": ("OK", QStyle.StandardPixmap.SP_DialogApplyButton),
           "warn": ("Warning", QStyle.StandardPixmap.SP_MessageBoxWarning),
           "fail": ("Problem", QStyle.StandardPixmap.SP_MessageBoxCritical)}
CHECK_LABELS = {"ram": "Memory (RAM)", "gpu": "GPU / VRAM", "disk": "Disk space", "torch": "PyTorch"}
POOLS = [("tiny", "Tiny (built-in test model, offline)"), ("small", "Small: Qwen2.5-Coder-0.5B"),
         ("large", "Large: Qwen2.5-Coder-1.5B / DeepSeek-Coder-1.3B")]


def needs_first_run(ctx: AppContext) -> bool:
    return not gui_settings(ctx).value(KEY_DONE, False, type=bool)


def _child_environment() -> QProcessEnvironment:
    env = QProcessEnvironment.systemEnvironment()
    if not FROZEN:
        # From a source checkout `python -m desktop.cli` needs the checkout on the path.
        root = str(Path(__file__).resolve().parents[2])
        old = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", root + (os.pathsep + old if old else ""))
    return env


class PreflightStep(QWizardPage):
    """Runs the probe and lists its verdicts; Next is never held back by it."""

    finished = Signal(dict)  # the probe's JSON
    failed = Signal(str)

    def __init__(self, command: list[str]):
        super().__init__()
        self.setTitle("Checking this computer")
        self.setSubTitle("Memory, GPU and disk decide which model pool this peer can train.")
        self.command = command
        self.result: dict | None = None
        self.process: QProcess | None = None
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.grid = QGridLayout()
        self.rows: dict[str, tuple[str, str]] = {}  # name -> (verdict text, message)
        self.again = QPushButton("Check again")
        self.again.clicked.connect(self.start)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(self.grid)
        layout.addWidget(self.again)
        layout.addStretch(1)

    def start(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            return
        self.result = None
        self._clear()
        self.status.setText("Checking… (the first time this can take a few seconds)")
        self.again.setEnabled(False)
        self.process = QProcess(self)
        self.process.setProcessEnvironment(_child_environment())
        self.process.finished.connect(self._done)
        self.process.errorOccurred.connect(self._error)
        self.process.start(self.command[0], self.command[1:])

    def _clear(self) -> None:
        self.rows.clear()
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(f"The check could not start ({self.process.errorString()}).")

    def _done(self, code: int, _status) -> None:
        out = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        err = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        try:
            if code != 0:
                raise ValueError(err.strip().splitlines()[-1] if err.strip() else f"exit code {code}")
            result = json.loads(out)
        except (ValueError, IndexError) as exc:
            self._fail(f"The check failed: {exc}")
            return
        self.show_result(result)

    def _fail(self, message: str) -> None:
        self.status.setText(message + " You can still go on; the node checks again when it starts.")
        self.again.setEnabled(True)
        self.failed.emit(message)

    def show_result(self, result: dict) -> None:
        self.result = result
        self._clear()
        checks = list(result.get("checks", []))
        pool = result.get("pool", "small")
        checks.append({"name": "pool", "level": "ok",
                       "message": f"{pool}: {result.get('pool_reason', '')}"})
        for row, check in enumerate(checks):
            level = check.get("level", "ok") if check.get("level") in VERDICT else "warn"
            text, pixmap = VERDICT[level]
            icon = QLabel()
            icon.setPixmap(self.style().standardIcon(pixmap).pixmap(16, 16))
            name = CHECK_LABELS.get(check.get("name"), "Model pool" if check.get("name") == "pool"
                                    else str(check.get("name")))
            message = QLabel(f"{text}: {check.get('message', '')}")
            message.setWordWrap(True)
            self.grid.addWidget(icon, row, 0)
            self.grid.addWidget(QLabel(name), row, 1)
            self.grid.addWidget(message, row, 2)
            self.rows[check.get("name")] = (text, check.get("message", ""))
        worst = next((lvl for lvl in ("fail", "warn") if any(c.get("level") == lvl for c in checks)), "ok")
        self.status.setText({"ok": "This computer is ready.",
                             "warn": "This computer can take part; see the warnings below.",
                             "fail": "Something needs fixing before a node can train well."}[worst])
        self.again.setEnabled(True)
        self.finished.emit(result)

    def initializePage(self) -> None:
        if self.result is None:
            self.start()


class ProfileStep(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("Which swarm?")
        # every page has a subtitle: in the Classic and Modern wizard styles a page without one
        # loses the header and shows its title in small type
        self.setSubTitle("Peers train together in a swarm; you can switch later in Settings.")
        self.local = QRadioButton("A local swarm on this computer (works offline; recommended to start)")
        self.testnet = QRadioButton("The public testnet (needs internet and the official login)")
        self.local.setChecked(True)
        group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        for button in (self.local, self.testnet):
            group.addButton(button)
            layout.addWidget(button)
        layout.addStretch(1)

    def profile(self) -> str:
        return "testnet" if self.testnet.isChecked() else "local"


class ModelStep(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("Which model?")
        self.setSubTitle("The check above picked a pool for this computer; you may pick another.")
        self.pool = QComboBox()
        self.pool.addItem("Automatic", "auto")
        for value, label in POOLS:
            self.pool.addItem(label, value)
        self.pool.addItem("Another model from the hub…", "custom")
        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("e.g. Qwen/Qwen2.5-Coder-0.5B-Instruct")
        self.pool.currentIndexChanged.connect(self._changed)
        form = QFormLayout(self)
        form.addRow("Model pool", self.pool)
        form.addRow("Hub model", self.model_name)
        self._changed()

    def recommend(self, pool: str) -> None:
        self.pool.setItemText(0, f"Automatic (recommended here: {pool})")

    def _changed(self) -> None:
        self.model_name.setEnabled(self.pool.currentData() == "custom")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.pool.currentData() != "custom" or bool(self.model_name.text().strip())

    def choice(self) -> tuple[str, str | None]:
        """(pool, model name or None)."""
        if self.pool.currentData() == "custom":
            return "auto", self.model_name.text().strip()
        return self.pool.currentData(), None


class HfStep(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("Hugging Face (optional)")
        self.setSubTitle("With a write token the trained model is pushed to your account after "
                         "each round. You can skip this and add it later in Settings.")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_…")
        self.push = QCheckBox("Push the model after each round")
        self.token.textChanged.connect(lambda t: self.push.setChecked(bool(t.strip())))
        form = QFormLayout(self)
        form.addRow("Token", self.token)
        form.addRow("", self.push)


class IdentityStep(QWizardPage):
    def __init__(self, ctx: AppContext, choose_backup_path: Callable[[Path], Path | None]):
        super().__init__()
        self.ctx = ctx
        self.choose_backup_path = choose_backup_path
        self.identity: Identity | None = None
        self.created = False
        self.setTitle("Your peer")
        self.setSubTitle("A key on this computer names your peer and holds its rewards.")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.encrypt = QCheckBox("Protect the backup with a passphrase")
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("passphrase (8 characters or more)")
        self.backup_button = QPushButton("Save a backup…")
        self.backup_button.clicked.connect(self._backup_clicked)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.next_hint = QLabel("After Finish the app starts the swarm. On the local swarm, the sign-in "
                                "page opens first: an email is all it asks.")
        self.next_hint.setWordWrap(True)
        self.next_hint.setObjectName("muted")
        layout = QVBoxLayout(self)
        for widget in (self.info, self.encrypt, self.passphrase, self.backup_button, self.status):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.next_hint)

    def initializePage(self) -> None:
        if self.identity is not None:
            return
        try:
            self.identity, self.created = load_or_create_identity(identity_path(self.ctx))
        except IdentityError as exc:
            self.info.setText(f"The identity could not be loaded: {exc}\nFix or move the file, "
                              "or import a backup later in Settings → Identity.")
            self.backup_button.setEnabled(False)
            return
        verb = "was just created" if self.created else "was found on this computer"
        self.info.setText(f"This computer's peer is <b>{self.identity.name}</b> "
                          f"({self.identity.peer_id}); its key {verb}.<br>Keep a backup of it "
                          "somewhere safe: it carries the peer's name and rewards.")

    def save_backup(self, dest: Path, passphrase: str | None) -> Path:
        written = export_backup(self.identity.path, dest, passphrase)
        self.status.setText(f"Backup saved to {written}.")
        return written

    def _backup_clicked(self) -> None:
        passphrase = self.passphrase.text() if self.encrypt.isChecked() else None
        if passphrase is not None and len(passphrase) < 8:
            self.status.setText("Use a passphrase of at least 8 characters.")
            return
        suffix = "rlbackup" if passphrase else "pem"
        dest = self.choose_backup_path(
            Path.home() / f"swarm-{self.identity.name.replace(' ', '-')}.{suffix}")
        if dest is None:
            return
        try:
            self.save_backup(Path(dest), passphrase)
        except BackupError as exc:
            self.status.setText(str(exc))


class FirstRunWizard(QWizard):
    """Shown when :func:`needs_first_run` is true; ``completed`` after the settings are written."""

    completed = Signal()

    def __init__(self, ctx: AppContext, parent=None, *,
                 choose_backup_path: Callable[[Path], Path | None] | None = None,
                 probe_command: list[str] | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Welcome to RL Swarm")
        self.preflight = PreflightStep(probe_command or self_command("probe", "--json", *ctx.data_dir_arg))
        self.profile = ProfileStep()
        self.model = ModelStep()
        self.hf = HfStep()
        self.identity = IdentityStep(ctx, choose_backup_path or self._backup_dialog)
        for page in (self.preflight, self.profile, self.model, self.hf, self.identity):
            self.addPage(page)
        self.preflight.finished.connect(lambda r: self.model.recommend(r.get("pool", "small")))
        self.preflight.start()  # at once: the check runs while the user reads the first page

    def _backup_dialog(self, suggested: Path) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self, "Save identity backup", str(suggested))
        return Path(name) if name else None

    def apply(self) -> None:
        """Write what the wizard collected: config, token, and the "done" mark."""
        cfg = self.ctx.load_config()
        cfg.profile = self.profile.profile()
        cfg.model.pool, cfg.model.name = self.model.choice()
        token = self.hf.token.text().strip()
        cfg.hf.push = self.hf.push.isChecked() and bool(token)
        if token:
            hf_token_store(self.ctx).set(token)
        self.ctx.save_config(cfg)
        settings = gui_settings(self.ctx)
        settings.setValue(KEY_DONE, True)
        settings.sync()

    def accept(self) -> None:
        self.apply()
        self.completed.emit()
        super().accept()

    def done(self, result: int) -> None:
        if self.preflight.process is not None:
            self.preflight.process.kill()  # closing early must not leave the probe behind
            self.preflight.process.waitForFinished(2000)
        super().done(result)
