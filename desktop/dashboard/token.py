"""Where a dashboard's token lives and how it is read: light (no aiohttp), so that `rl-swarm health`
reads the same file the page checks against without loading the web server."""

from __future__ import annotations

from pathlib import Path

from desktop.utils.fsutil import FileTooLarge, read_bounded

TOKEN_FILE = "token"
MIN_LENGTH = 32  # shorter is no token of ours: the server makes a new one


def token_path(data_dir) -> Path:
    return Path(data_dir) / "dashboard" / TOKEN_FILE


def read_token(data_dir) -> str | None:
    """The token kept in ``data_dir``, or None where there is none (or it is not one of ours)."""
    try:
        token = read_bounded(token_path(data_dir), 256).decode("ascii").strip()
    except (OSError, FileTooLarge, UnicodeDecodeError):
        return None
    return token if len(token) >= MIN_LENGTH else None
