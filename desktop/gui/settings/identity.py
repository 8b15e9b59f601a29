"""Identity: this peer's id and name, and safe backup and restore of swarm.pem.

Actions here happen at once (they are not part of Save): a backup is written when asked, and an
import replaces the key only after the user has seen whose key the backup holds and agreed. The
dialogs are callables given to the constructor, so tests (and other front ends) can answer them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QWidget)

from desktop.gui.context import AppContext
from desktop.identity import Identity, IdentityError, load_identity
from desktop.identity.backup import (BackupError, ImportResult, export_backup, import_backup,
                                     inspect_backup, is_encrypted)

from .base import SettingsPage

MIN_PASSPHRASE = 8


def identity_path(ctx: AppContext) -> Path:
    """The key the node uses: config's identity_path if set, else the data dir's."""
    configured = ctx.load_config().identity_path
    return Path(configured).expanduser() if configured else ctx.paths.identity


# ---- default dialogs (replaced in tests) -------------------------------------------------

def _confirm_dialog(parent: QWidget) -> Callable[[str], bool]:
    def ask(text: str) -> bool:
        answer = QMessageBox.question(parent, "Replace identity?", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes
    return ask


def _passphrase_dialog(parent: QWidget) -> Callable[[str], str | None]:
    def ask(prompt: str) -> str | None:
        text, ok = QInputDialog.getText(parent, "Backup passphrase", prompt, QLineEdit.EchoMode.Password)
        return text if ok else None
    return ask


class IdentityPage(SettingsPage):
    title = "Identity"
    icon_name = "dialog-password"
    identity_changed = Signal(str, str)  # peer id, name: the node must restart to use it

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *,
                 confirm: Callable[[str], bool] | None = None,
                 ask_passphrase: Callable[[str], str | None] | None = None,
                 choose_export_path: Callable[[Path], Path | None] | None = None,
                 choose_import_path: Callable[[], Path | None] | None = None):
        super().__init__(ctx, parent)
        self.confirm = confirm or _confirm_dialog(self)
        self.ask_passphrase = ask_passphrase or _passphrase_dialog(self)
        self.choose_export_path = choose_export_path or self._export_dialog
        self.choose_import_path = choose_import_path or self._import_dialog
        self.identity: Identity | None = None
        self.busy = False  # a backup is being checked or imported on a pool thread
        self._tasks: set[_Task] = set()

        form = self.add_form()
        self.name = QLabel()
        self.peer_id = QLabel()
        self.key_path = QLabel()
        for label in (self.name, self.peer_id, self.key_path):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy = QPushButton("Copy")
        self.copy.setToolTip("Copy the peer id")
        self.copy.clicked.connect(self.copy_peer_id)
        row = QHBoxLayout()
        row.addWidget(self.peer_id, 1)
        row.addWidget(self.copy)
        form.addRow("Name", self.name)
        form.addRow("Peer id", row)
        form.addRow("Key file", self.key_path)

        self.encrypt = QCheckBox("Protect the backup with a passphrase")
        self.passphrase = QLineEdit()
        self.passphrase_again = QLineEdit()
        for edit, hint in ((self.passphrase, "passphrase"), (self.passphrase_again, "repeat it")):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText(hint)
            edit.setEnabled(False)
        self.encrypt.toggled.connect(self.passphrase.setEnabled)
        self.encrypt.toggled.connect(self.passphrase_again.setEnabled)
        self.export_button = QPushButton("Export a backup…")
        self.export_button.clicked.connect(self._export_clicked)
        self.import_button = QPushButton("Import a backup…")
        self.import_button.clicked.connect(self._import_clicked)
        for widget in (self.encrypt, self.passphrase, self.passphrase_again, self.export_button,
                       self.import_button):
            self._layout.addWidget(widget)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._layout.addWidget(self.status)
        self.add_note("swarm.pem is this peer: its name, its place on the leaderboard and its "
                      "rewards. Keep a backup somewhere safe; anyone with it can act as this peer.")
        self.finish()

    # ---- display ----
    def load(self) -> None:
        path = identity_path(self.ctx)
        self.key_path.setText(str(path))
        try:
            self.identity = load_identity(path)
        except IdentityError as exc:
            self.identity = None
            self.name.setText("—")
            self.peer_id.setText("No identity yet: one is created when the node first starts."
                                 if not path.exists() else str(exc))
        else:
            self.name.setText(self.identity.name)
            self.peer_id.setText(self.identity.peer_id)
        self.copy.setEnabled(self.identity is not None)
        self.export_button.setEnabled(self.identity is not None and not self.busy)

    def copy_peer_id(self) -> None:
        if self.identity is not None:
            QGuiApplication.clipboard().setText(self.identity.peer_id)
            self.status.setText("Peer id copied.")

    # ---- export ----
    def export_to(self, dest: Path, passphrase: str | None) -> Path:
        """Write a backup (raises BackupError); the status line says where it went."""
        written = export_backup(identity_path(self.ctx), dest, passphrase)
        kind = "encrypted backup" if passphrase else "backup (not encrypted: keep it private)"
        self.status.setText(f"Saved a {kind} to {written}.")
        return written

    def _export_passphrase(self) -> str | None:
        if not self.encrypt.isChecked():
            return None
        text = self.passphrase.text()
        if len(text) < MIN_PASSPHRASE:
            raise BackupError(f"Use a passphrase of at least {MIN_PASSPHRASE} characters.")
        if text != self.passphrase_again.text():
            raise BackupError("The two passphrases differ.")
        return text

    def _export_clicked(self) -> None:
        try:
            passphrase = self._export_passphrase()
            suffix = "rlbackup" if passphrase else "pem"
            stem = (self.identity.name if self.identity else "peer").replace(" ", "-")
            dest = self.choose_export_path(Path.home() / f"swarm-{stem}.{suffix}")
            if dest is not None:
                self.export_to(Path(dest), passphrase)
        except BackupError as exc:
            self.status.setText(str(exc))

    def _export_dialog(self, suggested: Path) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self, "Save identity backup", str(suggested))
        return Path(name) if name else None

    # ---- import ----
    # Inspecting and importing run scrypt (and read files): in the button's path both happen on
    # a pool thread so the window never freezes; ``import_from`` is the same steps, synchronous.
    @staticmethod
    def _check(path: Path, passphrase: str | None, identity: Identity | None) -> str | None:
        """The question to ask before importing ``path``, or None: it is the key in use already."""
        info = inspect_backup(path, passphrase)
        if identity is not None and identity.peer_id == info.peer_id:
            return None
        current = (f"Your current identity, {identity.name}, is kept as a dated .bak file "
                   f"next to it." if identity else "")
        return (f"This backup belongs to\n\n    {info.name}\n    {info.peer_id}\n\n"
                f"Use it as this computer's identity? {current} The node must restart "
                f"to use it.")

    def _imported(self, result: ImportResult) -> ImportResult:
        if result.changed:
            self.load()
        self.status.setText(result.message)
        if result.changed:
            self.identity_changed.emit(result.peer_id, result.name)
        return result

    def import_from(self, path: Path, passphrase: str | None = None) -> ImportResult | None:
        """Validate ``path``, show whose key it is, and replace the identity only if confirmed.

        Raises BackupError for a bad backup (nothing changes). None: the user declined.
        """
        target = identity_path(self.ctx)
        question = self._check(path, passphrase, self.identity)
        if question is not None and not self.confirm(question):
            self.status.setText("Import cancelled; nothing changed.")
            return None
        return self._imported(import_backup(path, target, passphrase))  # same key: a no-op saying so

    def start_import(self, path: Path, passphrase: str | None = None) -> None:
        """``import_from`` off the GUI thread; the status line says how it went."""
        target, current = identity_path(self.ctx), self.identity  # read here, not on the pool thread
        self._set_busy("Checking the backup…")

        def checked(question: str | None) -> None:
            if question is not None and not self.confirm(question):
                self._set_busy(None)
                self.status.setText("Import cancelled; nothing changed.")
                return
            self._set_busy("Importing the backup…")
            self._run(lambda: import_backup(path, target, passphrase), imported)

        def imported(result: ImportResult) -> None:
            self._set_busy(None)
            self._imported(result)

        self._run(lambda: self._check(path, passphrase, current), checked)

    def _run(self, work: Callable[[], object], then: Callable[[object], None]) -> None:
        task = _Task(work, then)
        self._tasks.add(task)
        # a bound method: Qt drops the delivery if the page is gone by the time the work ends
        task.signals.done.connect(self._task_done, Qt.ConnectionType.QueuedConnection)
        QThreadPool.globalInstance().start(task)

    def _task_done(self, task: "_Task") -> None:
        self._tasks.discard(task)
        if task.error is None:
            task.then(task.result)
        else:
            self._set_busy(None)
            self.status.setText(str(task.error))

    def _set_busy(self, message: str | None) -> None:
        """A message: working (no second import or export meanwhile). None: idle again."""
        self.busy = message is not None
        self.import_button.setEnabled(not self.busy)
        self.export_button.setEnabled(not self.busy and self.identity is not None)
        if message is not None:
            self.status.setText(message)

    def _import_clicked(self) -> None:
        path = self.choose_import_path()
        if path is None:
            return
        try:
            passphrase = None
            if is_encrypted(path):  # reads at most 256 KiB: fine on this thread
                passphrase = self.ask_passphrase(f"Passphrase for {Path(path).name}:")
                if passphrase is None:
                    return
            self.start_import(Path(path), passphrase)
        except BackupError as exc:
            self.status.setText(str(exc))

    def _import_dialog(self) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self, "Import identity backup", str(Path.home()))
        return Path(name) if name else None


class _Signals(QObject):
    done = Signal(object)  # the _Task, with its result or error set


class _Task(QRunnable):
    """One call on a pool thread; ``signals.done`` brings the outcome back to the GUI thread."""

    def __init__(self, work: Callable[[], object], then: Callable[[object], None]):
        super().__init__()
        self.setAutoDelete(False)  # the page holds it until done has been delivered
        self.work, self.then = work, then
        self.result: object = None
        self.error: BackupError | None = None
        self.signals = _Signals()

    def run(self) -> None:
        try:
            self.result = self.work()
        except BackupError as exc:
            self.error = exc
        except Exception as exc:  # an unexpected failure must not leave the page "checking" forever
            self.error = BackupError(f"The import failed: {type(exc).__name__}: {exc}")
        self.signals.done.emit(self)
