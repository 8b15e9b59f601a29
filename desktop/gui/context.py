"""What every part of the app shares: where files live, the user's settings, how to start tools.

Light on purpose (no Qt widgets, no torch): pages, the supervisor and tests all build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePath

from typing import TYPE_CHECKING

from desktop.utils.paths import AppPaths
from desktop.utils.runtime import Native, Wsl
from desktop.utils.runtime import current as current_runtime

if TYPE_CHECKING:  # pydantic costs ~0.2 s at start-up: loaded when the config is first read
    from desktop.config import Config


@dataclass
class AppContext:
    paths: AppPaths
    data_dir_arg: list[str] = field(default_factory=list)  # ["--data-dir", D] when not the default
    config_error: str | None = None  # why the user's config.yaml could not be read, at the last load
    runtime: Native | Wsl = field(default_factory=current_runtime)  # where node and services run

    @classmethod
    def create(cls, data_dir: str | Path | None = None) -> "AppContext":
        runtime = current_runtime()
        if data_dir is None and isinstance(runtime, Wsl):
            # the node in WSL is named only the data dir, so it reads <data>/config/config.yaml and
            # writes <data>/logs: the app keeps its settings and reads the logs there too
            paths = AppPaths.default(AppPaths.default().data)
        else:
            paths = AppPaths.default(data_dir)
        return cls(paths=paths, data_dir_arg=["--data-dir", str(paths.data)] if data_dir else [], runtime=runtime)

    # ---- node config (the same YAML the headless node reads) --------------------------------------
    def load_config(self) -> "Config":
        """The user's config over the defaults. A file that cannot be read gives the defaults to
        show, and ``config_error`` says why: saving is then refused, so the user's file is never
        replaced by what we could not read."""
        from desktop.config import ConfigError, load_config  # pydantic (~0.3 s): after the first paint

        try:
            config = load_config(self.paths.config_file if self.paths.config_file.exists() else None)
        except ConfigError as exc:
            self.config_error = str(exc)
            return load_config(None)
        self.config_error = None
        return config

    def save_config(self, config: "Config") -> None:
        """Write the settings that differ from the defaults (atomically). Refused with a
        ConfigError while the file on disk has errors."""
        from desktop.config import ConfigError, save_config  # as in load_config

        self.load_config()  # the file may have been edited by hand since
        if self.config_error:
            raise ConfigError(f"not saved: {self.config_file_name()} has errors; fix or remove it first "
                              f"({self.config_error.splitlines()[0]})")
        save_config(config, self.paths.config_file)

    def config_file_name(self) -> str:
        return str(self.paths.config_file)

    # ---- child processes ---------------------------------------------------------------------------
    def _child_data_args(self) -> list:
        """``--data-dir`` for a child: inside WSL the platform dirs are the distro's, so the app's
        own data dir is always named there (as a path, for the runtime to translate)."""
        if self.data_dir_arg or isinstance(self.runtime, Wsl):
            return ["--data-dir", PurePath(self.paths.data)]
        return []

    def node_command(self, *extra: str) -> list[str]:
        control = [] if self.runtime.signals_reach_children else ["--control-stdin"]
        return self.runtime.command("node", "--json-events", *control, *self._child_data_args(), *extra)

    def app_node_command(self, *extra: str) -> list[str]:
        """The app's own peer: on the DHT; on the local profile it is the swarm's first peer."""
        swarm = ["--swarm", "--no-dashboard"]  # the window is this node's dashboard
        if self.load_config().profile == "local":
            swarm.append("--publish-bootnode")
        return self.node_command(*swarm, *extra)

    def chain_status_command(self) -> list[str]:
        """`rl-swarm chain status --json` for this data dir (the Swarm page runs it in the background)."""
        return self.runtime.command("chain", "status", "--json", *self._child_data_args())

    def join_command(self, code: str) -> list[str]:
        return self.runtime.command("join", code, *self._child_data_args())

    def host_invite_command(self, uses: int, expires: str) -> list[str]:
        return self.runtime.command("host", "invite", "--uses", str(uses), "--expires", expires,
                                    *self._child_data_args())

    def services_command(self, *extra: str) -> list[str]:
        control = [] if self.runtime.signals_reach_children else ["--control-stdin"]
        return self.runtime.command("services", "--json", "--log-events", *control, *self._child_data_args(), *extra)

    def gui_settings_file(self) -> Path:
        return self.paths.config / "gui.ini"
