"""Hugging Face: the write token (kept out of config files) and whether to push each round.

The token goes to the OS keyring. Headless Linux has no keyring backend, so there it falls back
to an owner-only file under the data dir. It is never written to config.yaml or logged: the
supervisor reads it with :func:`read_hf_token` and hands it to the node in the environment
variable the config names (``hf.token_env``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QPushButton, QWidget

from desktop.config import HfConfig
from desktop.gui.context import AppContext

from .base import SettingsPage


log = logging.getLogger(__name__)
KEYRING_SERVICE = "rl-swarm-desktop"
KEYRING_USER = "hf-token"


class HfTokenStore:
    """The token in the keyring when one works, else in ``fallback_file`` (0600, dir 0700)."""

    def __init__(self, fallback_file: Path):
        self.fallback_file = Path(fallback_file)

    @staticmethod
    def _keyring():
        try:
            import keyring  # its backends probe D-Bus and the OS store: only when a token is read or kept

            return keyring
        except Exception:  # not installed, or a backend that fails at import
            return None

    def get(self) -> str | None:
        kr = self._keyring()
        if kr is not None:
            try:
                token = kr.get_password(KEYRING_SERVICE, KEYRING_USER)
                if token:
                    return token
            except Exception as exc:  # NoKeyringError, a locked or broken backend
                log.debug("keyring unavailable (%s); using the fallback file", type(exc).__name__)
        try:
            return self.fallback_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def set(self, token: str | None) -> str:
        """Store (or with an empty token, remove) the token. Returns "keyring", "file" or "none"."""
        token = (token or "").strip()
        if not token:
            self.clear()
            return "none"
        kr = self._keyring()
        if kr is not None:
            try:
                kr.set_password(KEYRING_SERVICE, KEYRING_USER, token)
                self.fallback_file.unlink(missing_ok=True)  # one copy only
                return "keyring"
            except Exception as exc:
                log.info("no usable keyring (%s); storing the token in an owner-only file",
                         type(exc).__name__)
        self._write_file(token)
        return "file"

    def clear(self) -> None:
        kr = self._keyring()
        if kr is not None:
            try:
                kr.delete_password(KEYRING_SERVICE, KEYRING_USER)
            except Exception:
                pass  # nothing stored there, or no backend
        self.fallback_file.unlink(missing_ok=True)

    def _write_file(self, token: str) -> None:
        self.fallback_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.fallback_file.with_name(self.fallback_file.name + ".tmp")
        tmp.unlink(missing_ok=True)
        # Created 0600 from the start: the token is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token)
        tmp.replace(self.fallback_file)


def hf_token_store(ctx: AppContext) -> HfTokenStore:
    return HfTokenStore(ctx.paths.data / "secrets" / "hf_token")


def read_hf_token(ctx: AppContext) -> str | None:
    """The stored token, for the supervisor to put in the node's environment."""
    return hf_token_store(ctx).get()


def node_env(ctx: AppContext) -> dict[str, str]:
    """The node's environment from the app's settings: the stored token, under the variable the
    config names. Read at every start, whichever button started the node."""
    token = read_hf_token(ctx)
    if not token:
        return {}
    try:
        name = ctx.load_config().hf.token_env
    except Exception:  # a config with errors: the settings page says so; the default name then
        name = HfConfig().token_env
    return {name: token}


class HuggingFacePage(SettingsPage):
    title = "Hugging Face"
    icon_name = "network-server"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.store = hf_token_store(ctx)
        form = self.add_form()
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_… (a token with write access)")
        self.show_token = QPushButton("Show")
        self.show_token.setCheckable(True)
        self.show_token.toggled.connect(self._toggle_echo)
        row = QHBoxLayout()
        row.addWidget(self.token, 1)
        row.addWidget(self.show_token)
        form.addRow("Token", row)
        self.user = QLineEdit()
        self.user.setPlaceholderText("default: the token's owner")
        form.addRow("Hub user or org", self.user)
        self.push = QCheckBox("Push the trained model to the hub after each round")
        self._layout.addWidget(self.push)
        self.where = self.add_note("")
        self.add_note("The model goes to <user>/<model>-Gensyn-Swarm-<your peer's animal>. "
                      "A failed push is logged and training goes on.")
        self.finish()

    def _toggle_echo(self, shown: bool) -> None:
        self.token.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_token.setText("Hide" if shown else "Show")

    def load(self) -> None:
        cfg = self.ctx.load_config()
        self.push.setChecked(cfg.hf.push)
        self.user.setText(cfg.hf.user or "")
        self.token.setText(self.store.get() or "")
        self.where.setText("")

    def validate(self) -> str | None:
        token = self.token.text().strip()
        if any(c.isspace() for c in token):
            return "The Hugging Face token cannot contain spaces."
        if self.push.isChecked() and not token:
            return "Pushing to Hugging Face needs a token with write access."
        return None

    def save(self) -> None:
        where = self.store.set(self.token.text())
        self.where.setText({"keyring": "The token is stored in the system keyring.",
                            "file": "No system keyring here: the token is stored in a file "
                                    "only you can read.",
                            "none": ""}[where])
        cfg = self.ctx.load_config()
        cfg.hf.push = self.push.isChecked()
        cfg.hf.user = self.user.text().strip() or None
        self.ctx.save_config(cfg)
