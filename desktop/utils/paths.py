"""Where things live on disk: platform directories, the data dir layout and shipped resources.

Every command takes ``--data-dir`` so several peers (and tests) can run side by side; when it is
given, config and logs live inside it too, so one directory holds a whole peer.
``$RL_SWARM_DATA_DIR`` stands for ``--data-dir`` where none is given (a container's volume), and
``$RL_SWARM_MODEL_CACHE`` puts downloaded models in one folder every peer shares (another volume,
so a rebuilt container downloads nothing again).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "rl-swarm-desktop"
DATA_DIR_ENV = "RL_SWARM_DATA_DIR"
MODEL_CACHE_ENV = "RL_SWARM_MODEL_CACHE"
_DIRS = PlatformDirs(APP_NAME, appauthor=False)


def resource_path(*parts: str) -> Path:
    """A file shipped in ``resources/`` (source checkout, installed wheel or frozen app)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    candidates = [Path(frozen_root) / "resources"] if frozen_root else []
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for root in candidates:
        if root.is_dir():
            return root.joinpath(*parts)
    return candidates[-1].joinpath(*parts)


@dataclass(frozen=True)
class AppPaths:
    """The directories of one peer. ``data`` holds identity, checkpoints, models and chain."""

    config: Path
    data: Path
    logs: Path

    @classmethod
    def default(cls, data_dir: str | os.PathLike | None = None) -> "AppPaths":
        if data_dir is None and os.environ.get(DATA_DIR_ENV):
            data_dir = os.environ[DATA_DIR_ENV]
        if data_dir is not None:
            root = Path(data_dir).expanduser().resolve()
            return cls(config=root / "config", data=root, logs=root / "logs")
        return cls(config=Path(_DIRS.user_config_dir), data=Path(_DIRS.user_data_dir),
                   logs=Path(_DIRS.user_log_dir))

    @property
    def config_file(self) -> Path:
        return self.config / "config.yaml"

    @property
    def identity(self) -> Path:
        return self.data / "identity" / "swarm.pem"

    @property
    def checkpoints(self) -> Path:
        return self.data / "checkpoints"

    @property
    def models(self) -> Path:
        shared = os.environ.get(MODEL_CACHE_ENV)
        return Path(shared).expanduser() if shared else self.data / "models"

    @property
    def chain(self) -> Path:
        return self.data / "chain"

    def ensure(self) -> "AppPaths":
        for path in (self.config, self.data, self.logs, self.checkpoints, self.models):
            path.mkdir(parents=True, exist_ok=True)
        return self
