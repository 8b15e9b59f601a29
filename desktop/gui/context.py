"""What every part of the app shares: where files live, the user's settings, how to start tools.

Light on purpose (no Qt widgets, no torch): pages, the supervisor and tests all build on it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from desktop.paths import AppPaths

if TYPE_CHECKING:  # pydantic costs ~0.2 s at start-up: loaded when the config is first read
    from desktop.config import Config


def cli_command(*args: str) -> list[str]:
    """argv that runs `rl-swarm ARGS` in a child process, from a checkout or a frozen app."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "desktop.cli", *args]


@dataclass
class AppContext:
    paths: AppPaths
    data_dir_arg: list[str] = field(default_factory=list)  # ["--data-dir", D] when not the default

    @classmethod
    def create(cls, data_dir: str | Path | None = None) -> "AppContext":
        paths = AppPaths.default(data_dir)
        return cls(paths=paths, data_dir_arg=["--data-dir", str(paths.data)] if data_dir else [])

    # ---- node config (the same YAML the headless node reads) --------------------------------------
    def load_config(self) -> "Config":
        """The user's config over the defaults; a broken file falls back to defaults (the settings
        page shows the error and saving rewrites it)."""
        from desktop.config import ConfigError, load_config

        try:
            return load_config(self.paths.config_file if self.paths.config_file.is_file() else None)
        except ConfigError:
            return load_config(None)

    def save_config(self, config: "Config") -> None:
        from desktop.config import dump_config

        self.paths.config.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.config_file.with_suffix(".yaml.tmp")
        tmp.write_text(dump_config(config), encoding="utf-8")
        tmp.replace(self.paths.config_file)

    # ---- child processes ---------------------------------------------------------------------------
    def node_command(self, *extra: str) -> list[str]:
        return cli_command("node", "--json-events", *self.data_dir_arg, *extra)

    def app_node_command(self, *extra: str) -> list[str]:
        """The app's own peer: on the DHT; on the local profile it is the swarm's first peer."""
        swarm = ["--swarm"]
        if self.load_config().profile == "local":
            swarm.append("--publish-bootnode")
        return self.node_command(*swarm, *extra)

    def services_command(self, *extra: str) -> list[str]:
        return cli_command("services", "--json", *self.data_dir_arg, *extra)

    def gui_settings_file(self) -> Path:
        return self.paths.config / "gui.ini"
