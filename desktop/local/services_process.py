"""The local services (`rl-swarm services`) as a child of the local swarm launcher.

Starts the chain + login server + round keeper, waits for their discovery line, and gives every
local solver its own account on the login server, as if each peer had its own user.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from pathlib import Path

from desktop.events import EventError, decode
from desktop.utils.frozen import self_command
from desktop.utils.proc_stop import terminate_then_kill


class ServicesFailed(Exception):
    """The local services did not come up; the message is meant for the user."""


class ServicesProcess:
    def __init__(self, data_dir: Path, *, startup_timeout: float = 120.0, name_data_dir: bool = True) -> None:
        """``name_data_dir`` False: the services find the data dir as the node did (the platform's
        folders or $RL_SWARM_DATA_DIR), config included, rather than by --data-dir."""
        self.data_dir = Path(data_dir)
        self.name_data_dir = name_data_dir
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    @property
    def services_file(self) -> Path:
        return self.data_dir / "chain" / "services.json"

    def start(self) -> dict:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "services-stderr.log", "ab") as err:
            where = ["--data-dir", str(self.data_dir)] if self.name_data_dir else []
            self.proc = subprocess.Popen(self_command("services", "--json", *where),
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True,
                                         start_new_session=True)
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        line = first[0] if first else ""
        try:
            self.info = decode(line)
            if self.info["type"] != "services_ready":
                raise EventError(self.info["type"])
        except EventError:
            self.stop()
            raise ServicesFailed("the local chain and login server did not start; see "
                                 f"{self.data_dir / 'services-stderr.log'}") from None
        return self.info

    def create_account(self, email: str) -> str:
        """The orgId of the (new or existing) local account for ``email``."""
        token = Path(self.info["api_token_file"]).read_text().strip()
        request = urllib.request.Request(self.info["login_url"] + "/api/local-account",
                                         data=json.dumps({"email": email}).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=60) as reply:
                return json.loads(reply.read())["orgId"]
        except (OSError, ValueError, KeyError) as exc:
            raise ServicesFailed(f"could not create the local account {email}: {exc}") from None

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is None:
            return
        terminate_then_kill([self.proc], grace)  # on SIGTERM anvil saves its state on the way out
