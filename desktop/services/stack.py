"""`rl-swarm services`: the local profile's chain, login server and round keeper, in the foreground.

anvil keeps its state in ``<data>/chain/anvil-state.json`` so the chain (registrations, rewards)
survives restarts; the coordinator is deployed on the first start and its address remembered in
``<data>/chain/deployment.json``; every key that matters on the chain is this machine's own
(services.private_chain). Clients find everything through ``<data>/chain/services.json``.
One data dir, one services process: ``<data>/services.lock`` is held for the life of the process
(the kernel frees it when the process dies), and a second start says who holds it and leaves
everything alone. A chain that is alive but stops answering is restarted from its last state dump.
SIGTERM / SIGINT stop all three cleanly (anvil writes its state on the way out).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from desktop.chain.anvil import Anvil, AnvilError, AnvilNotFound, rpc_call
from desktop.chain.profiles import services_file, write_services_file
from desktop.events import EventSink
from desktop.services.opening import HostOpening, describe
from desktop.utils.fsutil import Locked, ProcessLock
from desktop.utils.parent_watch import follow_commands, watch_parent

log = logging.getLogger(__name__)

ANVIL_PID = "anvil.pid"
LOCK_FILE = "services.lock"
STATE_INTERVAL = 2  # seconds between anvil's state dumps
# A chain that is alive but silent (a call that never ends, a stopped process) is restarted after
# HEALTH_STRIKES probes in a row, HEALTH_EVERY s apart, each unanswered within HEALTH_DEADLINE s.
HEALTH_EVERY, HEALTH_DEADLINE, HEALTH_STRIKES = 5.0, 5.0, 3


def stop_stale_anvil(chain_dir: Path, grace: float = 10.0) -> bool:
    """SIGTERM (so it writes its state) the anvil an earlier services process left behind."""
    pid_file = chain_dir / ANVIL_PID
    try:
        proc = psutil.Process(int(pid_file.read_text().strip()))
        if "anvil" not in proc.name() or not any(str(chain_dir) in part for part in proc.cmdline()):
            return False  # the pid was reused by something else: never touch it
        proc.terminate()
        proc.wait(grace)
        log.info("stopped the local chain left running by an earlier start (pid %d)", proc.pid)
        return True
    except psutil.TimeoutExpired:
        proc.kill()
        return True
    except (OSError, ValueError, psutil.Error):
        return False
    finally:
        pid_file.unlink(missing_ok=True)


def set_aside_unreadable(state: Path) -> None:
    """An anvil state file cut short (killed while dumping) would stop anvil from starting: keep it
    for a human and start from the last good copy, or from an empty chain."""
    if not state.is_file():
        return
    good = state.with_suffix(".good.json")
    try:
        json.loads(state.read_text(encoding="utf-8"))
        good.write_bytes(state.read_bytes())  # this one loads: remember it
        return
    except (OSError, ValueError):
        pass
    aside = state.with_name(f"{state.name}.corrupt-{int(time.time())}")
    state.replace(aside)
    log.error("the chain state %s was unreadable (kept as %s)", state, aside.name)
    if good.is_file():
        state.write_bytes(good.read_bytes())
        log.warning("the chain starts from its last good state instead")


class ServicesError(Exception):
    """The services could not start; the message is meant for the user."""

    exit_code = 1


class ServicesBusy(ServicesError):
    """Another process runs the services of this data dir; nothing was touched."""

    exit_code = 2


@dataclass
class ServicesInfo:
    rpc_url: str
    contract: str
    login_url: str
    api_token_file: str
    chain_id: int

    def public(self) -> dict:
        return {"rpc_url": self.rpc_url, "contract": self.contract, "login_url": self.login_url,
                "api_token_file": self.api_token_file}


def free_or(port: int) -> int:
    """``port`` if nothing listens there, else 0 (any free port): a busy default must not stop us.

    Probed with SO_REUSEADDR, as anvil and aiohttp bind: a port whose last connections are still
    in TIME_WAIT (services restarted a moment ago) is free for them, and clients that remember
    the port find the services there again."""
    if port == 0:
        return 0
    with socket.socket() as sock:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


@dataclass(frozen=True)
class RemoteChain:
    """A hosted swarm's chain (desktop.cli.join saved it in ``<data>/swarm.json``): this machine
    runs only its login server, whose accounts sign their own transactions to the host's proxy."""

    rpc_url: str
    contract: str
    chain_id: int


class LocalServices:
    def __init__(self, data_dir: Path, *, rpc_port: int = 8545, login_port: int = 3000,
                 round_period: float = 60.0, remote: RemoteChain | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.chain_dir = self.data_dir / "chain"
        self.rpc_port = rpc_port
        self.login_port = login_port
        self.round_period = round_period
        self.remote = remote
        self.anvil = None
        self.login = None
        self.keeper = None
        self.keys = None   # private_chain.ChainKeys of a local chain
        self.info: ServicesInfo | None = None
        self.restarts = 0  # times the chain was started again (dead, or alive and silent)
        self._lock = ProcessLock(self.data_dir / LOCK_FILE)
        self._locked = False

    def _take_lock(self) -> None:
        """Before anything is touched: a second services process on this data dir would kill the
        first one's chain as stale and rewrite its services.json."""
        try:
            self._lock.acquire(" ".join(sys.argv[:6])[:300])
        except Locked as exc:
            raise ServicesBusy(f"the services of {self.data_dir} are already running ({exc.holder or 'another process'}); "
                               "stop them first, or use another --data-dir") from None
        except OSError as exc:
            raise ServicesError(f"cannot lock {self._lock.path}: {exc}") from None
        self._locked = True

    async def start(self) -> ServicesInfo:
        # web3 and aiohttp: loaded when the services start, not in every process that parses the
        # command line (desktop.cli imports this module)
        from web3 import Web3

        from desktop.services.login_server import LoginServer
        from desktop.services.private_chain import PrivateChainError, load_or_create_keys, secure_chain
        from desktop.services.round_keeper import RoundKeeper

        self._take_lock()
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        if self.remote is not None:
            return await self._start_remote()
        self.keys = keys = load_or_create_keys(self.chain_dir)
        stop_stale_anvil(self.chain_dir)  # a killed services process leaves its anvil running
        try:
            self.anvil = self._start_anvil(free_or(self.rpc_port))
        except (AnvilNotFound, AnvilError) as exc:
            raise ServicesError(str(exc)) from None
        w3 = Web3(Web3.HTTPProvider(self.anvil.rpc_url, request_kwargs={"timeout": 10}))
        chain_id = w3.eth.chain_id
        try:
            contract = await asyncio.to_thread(secure_chain, self.anvil.rpc_url, self.chain_dir, w3, chain_id, keys)
        except PrivateChainError as exc:
            raise ServicesError(str(exc)) from None
        self.login = LoginServer(self.data_dir, self.anvil.rpc_url, contract, port=free_or(self.login_port),
                                 funder_key=keys.funder, manager_key=keys.bootnode_manager)
        await self.login.start()
        self.keeper = RoundKeeper(self.anvil.rpc_url, contract, keys.stage_manager, period=self.round_period,
                                  advance_when_all_submitted=True)
        self.keeper.start()
        return self._advertise(self.anvil.rpc_url, contract, chain_id)

    def _advertise(self, rpc_url: str, contract: str, chain_id: int) -> ServicesInfo:
        """What the services are, in ``services.json`` for nodes started later."""
        self.info = ServicesInfo(rpc_url, contract, self.login.url, str(self.login.api_token_file), chain_id)
        write_services_file(services_file(self.data_dir), {**self.info.public(), "chain_id": chain_id})
        return self.info

    async def _start_remote(self) -> ServicesInfo:
        """The login server only, on the host's chain: no anvil, no deployment, no round keeper
        (the host keeps the rounds) and no funder (the host's join desk funded our account)."""
        from web3 import Web3  # web3 and aiohttp: as in start()

        from desktop.services.login_server import LoginServer

        r = self.remote
        w3 = Web3(Web3.HTTPProvider(r.rpc_url, request_kwargs={"timeout": 10}))
        try:
            chain_id = await asyncio.to_thread(lambda: w3.eth.chain_id)
        except Exception as exc:
            raise ServicesError(f"the swarm's chain at {r.rpc_url} does not answer ({type(exc).__name__}); "
                                "is the host running and reachable from here?") from None
        if chain_id != r.chain_id:
            raise ServicesError(f"the chain at {r.rpc_url} is chain {chain_id}, not the swarm's {r.chain_id}")
        self.login = LoginServer(self.data_dir, r.rpc_url, r.contract, port=free_or(self.login_port))
        await self.login.start()
        return self._advertise(r.rpc_url, r.contract, chain_id)

    def _start_anvil(self, port: int):
        state = self.chain_dir / "anvil-state.json"
        set_aside_unreadable(state)
        # a state dump every STATE_INTERVAL s: a chain killed outright loses at most that much;
        # no dev accounts: their keys are public (private_chain funds this machine's own keys)
        anvil = Anvil().start(port=port, state_file=state, state_interval=STATE_INTERVAL,
                              extra_args=["--accounts", "0"])
        (self.chain_dir / ANVIL_PID).write_text(str(anvil.pid))
        return anvil

    def _answers(self) -> bool:
        try:
            rpc_call(self.anvil.rpc_url, "eth_blockNumber", timeout=HEALTH_DEADLINE)
            return True
        except Exception:  # refused, timed out, garbage: all mean "not answering"
            return False

    async def watch(self, stop: asyncio.Event, every: float = 1.0) -> None:
        """Restart anvil, on the same port and state, if it dies under us or stops answering while
        alive (its clients keep their URL; the state is its last dump, at most STATE_INTERVAL s old)."""
        strikes, next_probe = 0, time.monotonic() + HEALTH_EVERY
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
                return
            except asyncio.TimeoutError:
                pass
            if self.anvil is None:
                continue
            why = None
            if not self.anvil.running:
                why = "the local chain stopped"
            elif time.monotonic() >= next_probe:
                next_probe = time.monotonic() + HEALTH_EVERY
                strikes = 0 if await asyncio.to_thread(self._answers) else strikes + 1
                if strikes >= HEALTH_STRIKES:
                    why = (f"the local chain is running but has not answered for {HEALTH_STRIKES} probes "
                           f"({HEALTH_EVERY:g} s apart)")
            if why is None:
                continue
            port = self.anvil.port
            log.warning("%s: starting it again on port %s from its last saved state", why, port)
            try:
                await asyncio.to_thread(self.anvil.stop, HEALTH_DEADLINE)
                self.anvil = await asyncio.to_thread(self._start_anvil, port)
                self.restarts += 1
                strikes, next_probe = 0, time.monotonic() + HEALTH_EVERY
            except Exception as exc:  # keep trying: the port may be in TIME_WAIT for a moment
                log.warning("could not restart the local chain: %s", exc)

    async def stop(self) -> None:
        if not self._locked:  # another process owns this data dir's services: leave its files alone
            return
        if self.keeper is not None:
            await asyncio.to_thread(self.keeper.stop)
        if self.login is not None:
            await self.login.stop()
        if self.anvil is not None:
            await asyncio.to_thread(self.anvil.stop)  # SIGTERM: anvil dumps its state file
            (self.chain_dir / ANVIL_PID).unlink(missing_ok=True)
        services_file(self.data_dir).unlink(missing_ok=True)  # nothing listens there any more
        self._lock.release()
        self._locked = False


async def _main(data_dir: Path, events: EventSink | None, rpc_port: int, login_port: int, round_period: float,
                remote: RemoteChain | None = None, hosting=None, control_stdin: bool = False) -> int:
    services = LocalServices(data_dir, rpc_port=rpc_port, login_port=login_port, round_period=round_period,
                             remote=remote)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch_parent(lambda: loop.call_soon_threadsafe(stop.set))
    if control_stdin:  # a 'stop' line stops the services as SIGTERM does: the app inside WSL cannot signal
        follow_commands(sys.stdin, {"stop": lambda: loop.call_soon_threadsafe(stop.set)})
    opening = None
    try:
        info = await services.start()
        if events is not None:
            events.emit("services_ready", **info.public())
        else:
            print(f"local chain    {info.rpc_url}  (coordinator {info.contract})\n"
                  f"login page     {info.login_url}/#s={services.login.session_secret}\n"
                  f"API token      {info.api_token_file}\n"
                  "press Ctrl-C to stop", flush=True)
        if hosting is not None:
            opening = await _open(data_dir, hosting, info, services.keys.funder, events)
        await services.watch(stop)
        return 0
    except ServicesError as exc:
        print(f"rl-swarm services: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    finally:
        if opening is not None:
            await opening.stop()
        await services.stop()


async def _open(data_dir: Path, settings, info: ServicesInfo, funder_key: str, events: EventSink | None):
    """config hosting.enabled: open this swarm to other machines (services.host). A port in use
    or a wrong address is said (a `hosting` event with its error) and the services go on for
    this machine alone."""
    from desktop.swarm.dht import SwarmError  # hivemind: only where hosting is on

    opening = HostOpening(data_dir, settings)
    try:
        facts = await opening.start(info, funder_key)
    except (OSError, SwarmError) as exc:
        await opening.stop()
        log.warning("cannot host the swarm: %s", exc)
        if events is not None:
            events.emit("hosting", name=settings.name, rpc="", boot=[], address="", rpc_answers=False,
                        dht_answers=False, error=f"cannot open the swarm to others: {exc}")
        else:
            print(f"not hosting: {exc}", file=sys.stderr, flush=True)
        return None
    if events is not None:
        events.emit("hosting", **{k: facts[k] for k in ("name", "rpc", "boot", "address", "rpc_answers",
                                                         "dht_answers")}, error=None)
    else:
        print(describe(facts), flush=True)
    return opening


def run_services(data_dir: Path, *, events: EventSink | None, rpc_port: int, login_port: int,
                 round_period: float, remote: RemoteChain | None = None, hosting=None,
                 control_stdin: bool = False) -> int:
    """Run until SIGTERM/SIGINT or the parent's exit. With ``events`` the first line on stdout is a
    ``services_ready`` event (what the app and the launcher wait for); else a line for a person.
    ``hosting`` (config.HostingConfig): also open the swarm to other machines."""
    return asyncio.run(_main(data_dir, events, rpc_port, login_port, round_period, remote, hosting, control_stdin))
