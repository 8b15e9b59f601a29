"""Run a local anvil chain (Foundry's dev node, from the pinned npm package).

The binary is static and needs no Node at run time; npm only puts it on disk:
``node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil[.exe]``. ``--state FILE`` makes the chain
survive restarts: anvil loads FILE at start and writes it when it exits on SIGTERM/SIGINT.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable

from desktop.utils.proc_stop import terminate_then_kill

ENV_OVERRIDE = "RL_SWARM_ANVIL"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID = 31337

_OS = {"linux": "linux", "darwin": "darwin", "win32": "win32", "cygwin": "win32"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "arm64": "arm64", "aarch64": "arm64"}


class AnvilNotFound(FileNotFoundError):
    """No anvil binary where we look; the message says how to install one."""


class AnvilError(RuntimeError):
    """anvil would not start (bad binary, port taken, no answer in time)."""


def platform_package() -> str:
    """``anvil-<os>-<arch>``, the npm package that holds this machine's binary."""
    os_name = next((v for k, v in _OS.items() if sys.platform.startswith(k)), sys.platform)
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    return f"anvil-{os_name}-{arch}"


def _binary_name() -> str:
    return "anvil.exe" if sys.platform in ("win32", "cygwin") else "anvil"


def default_search_roots() -> list[Path]:
    """A frozen app bundles node_modules/... under sys._MEIPASS; a checkout has it at the root."""
    frozen = getattr(sys, "_MEIPASS", None)
    return ([Path(frozen)] if frozen else []) + [REPO_ROOT]


def find_anvil(search_roots: Iterable[Path] | None = None) -> Path:
    """The anvil binary: ``$RL_SWARM_ANVIL``, else node_modules under each root, else PATH.

    PATH (a Foundry install) is only consulted with the default roots, so an explicit
    ``search_roots`` means exactly those places.
    """
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = Path(override).expanduser()
        if path.is_file():
            return path
        raise AnvilNotFound(f"{ENV_OVERRIDE}={override} is not a file. Point it at an anvil binary "
                            "or unset it to use the one `npm ci` installs.")
    explicit = search_roots is not None
    roots = [Path(r) for r in search_roots] if explicit else default_search_roots()
    rel = Path("node_modules", "@foundry-rs", platform_package(), "bin", _binary_name())
    looked = []
    for root in roots:
        candidate = root / rel
        looked.append(str(candidate))
        if candidate.is_file():
            return candidate
    if not explicit and (on_path := shutil.which("anvil")):
        return Path(on_path)
    raise AnvilNotFound(
        "anvil (the local chain) is not installed. Looked at: " + ", ".join(looked)
        + f". Install it with `make setup` or `npm ci` in {REPO_ROOT} (Node 20+; it pins "
        f"@foundry-rs/anvil), or set {ENV_OVERRIDE} to an anvil binary.")


@functools.lru_cache(maxsize=4)
def dev_accounts(count: int = 10) -> tuple[tuple[str, str], ...]:
    """``((address, private_key_hex), ...)`` of anvil's funded dev accounts (default mnemonic)."""
    from eth_account import Account  # eth-account: only the tests and the upgrade of an old chain need these keys

    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(count):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((acct.address, "0x" + acct.key.hex().removeprefix("0x")))
    return tuple(out)


def dev_private_keys(count: int = 10) -> list[str]:
    return [key for _, key in dev_accounts(count)]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC call with the standard library (no web3 needed)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.load(resp)
    if "error" in reply:
        raise AnvilError(f"{method}: {reply['error']}")
    return reply["result"]


class Anvil:
    """One anvil process on 127.0.0.1. ``with Anvil().start(state_file=p) as node: node.rpc_url``."""

    def __init__(self, binary: Path | None = None, host: str = "127.0.0.1"):
        self.binary = Path(binary) if binary else find_anvil()
        self.host = host
        self.port: int | None = None
        self.chain_id: int | None = None
        self.state_file: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, port: int = 0, state_file: Path | None = None, chain_id: int = DEFAULT_CHAIN_ID,
              *, state_interval: int | None = None, timeout: float = 20.0,
              extra_args: Iterable[str] = ()) -> "Anvil":
        """Start and wait until ``eth_chainId`` answers. ``port=0`` picks a free port.

        ``state_interval`` (seconds) also dumps the state periodically; worth it where the process
        may die without SIGTERM. On Windows terminate() is a hard kill, so with a state file we
        default to a 5 s interval there.
        """
        if self.running:
            raise AnvilError(f"anvil already running at {self.rpc_url}")
        if state_file is not None:
            state_file = Path(state_file)
            state_file.parent.mkdir(parents=True, exist_ok=True)
            if state_interval is None and sys.platform == "win32":
                state_interval = 5
        # An auto-picked port can be taken between our probe and anvil's bind: try a few.
        attempts = 3 if port == 0 else 1
        for attempt in range(attempts):
            chosen = port or _free_port(self.host)
            args = [str(self.binary), "--host", self.host, "--port", str(chosen),
                    "--chain-id", str(chain_id), "--quiet"]
            if state_file is not None:
                args += ["--state", str(state_file)]
            if state_interval:
                args += ["--state-interval", str(int(state_interval))]
            args += list(extra_args)
            try:
                self._launch(args, chosen, timeout)
            except AnvilError as exc:
                if attempt + 1 < attempts and ("in use" in str(exc).lower() or "10048" in str(exc)):
                    continue
                raise
            self.chain_id, self.state_file = chain_id, state_file
            return self
        raise AssertionError("unreachable")

    def _launch(self, args: list[str], port: int, timeout: float) -> None:
        # stderr goes to a temp file, not a pipe: nobody reads it while anvil runs, so a pipe
        # could fill and stall it; we only read it to explain a failed start.
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr)
        except OSError as exc:
            self._close_stderr()
            raise AnvilError(f"cannot run {args[0]}: {exc}") from exc
        self.port = port
        deadline = time.monotonic() + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                message = self._read_stderr()
                self._reset()
                raise AnvilError(f"anvil exited with {rc} on port {port}: {message}")
            try:
                rpc_call(self.rpc_url, "eth_chainId", timeout=1.0)
                return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AnvilError(f"anvil did not answer on {self.host}:{port} within {timeout:.0f} s")
            time.sleep(0.05)

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return text[-2000:] or "(no output)"

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _reset(self) -> None:
        self._proc, self.port = None, None
        self._close_stderr()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (anvil writes --state on it), then kill after ``timeout``. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        terminate_then_kill([proc], timeout, group=False)
        self._reset()
        return proc.returncode

    def rpc(self, method: str, params: list | None = None) -> Any:
        return rpc_call(self.rpc_url, method, params)

    def __enter__(self) -> "Anvil":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.rpc_url if self.running else "stopped"
        return f"Anvil({where}, chain_id={self.chain_id}, state={self.state_file})"
