"""The one `rl-swarm` command. Every module it names here is light at import (each loads torch,
hivemind, web3 or Qt only when a command really needs it), so `identity`, `probe --help` and the
GUI start fast and never load torch; the app itself is imported only by `rl-swarm gui`.

Exit codes: 0 success, 1 runtime failure, 2 bad input (arguments, config, key file).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from desktop import __version__
from desktop.chain.status import ChainUnavailable, chain_status, format_status
from desktop.cli.health import add_health_command, cmd_health
from desktop.cli.join import read_swarm
from desktop.cli.selftest import run_self_test
from desktop.config import ConfigError, load_config
from desktop.events import EventSink
from desktop.identity import IdentityError, load_or_create_identity
from desktop.local.launcher import run_swarm
from desktop.machine.probe import format_table, probe, probe_gpus
from desktop.node.main import run_node
from desktop.services.stack import RemoteChain, run_services
from desktop.utils.frozen import FROZEN
from desktop.utils.logs import send_records_as_events, setup_logging
from desktop.utils.paths import AppPaths
from desktop.cli.common import add_data_dir as _common
from desktop.cli.common import default_config as _default_config
from desktop.cli.common import fail as _fail
from desktop.cli.sharing import (add_sharing_commands, cmd_host, cmd_join, cmd_pause, cmd_resume,
                                 cmd_swarm_status, join_for_node)
from desktop.local.services_process import ServicesFailed, ServicesProcess


JOIN_ENV = "RL_SWARM_JOIN"  # `node --join CODE` where only the environment can be set (a container)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-swarm", description="Join an RL Swarm: train a code model "
                                     "with GRPO together with other peers.")
    parser.add_argument("--version", action="version", version=f"rl-swarm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    node = sub.add_parser("node", help="run a headless peer")
    _common(node)
    node.add_argument("--config", type=Path, help="YAML config file (default: <config dir>/config.yaml if present)")
    node.add_argument("--rounds", type=int, help="stop after this many rounds (default: run until stopped)")
    which = node.add_mutually_exclusive_group()
    which.add_argument("--pool", choices=["auto", "tiny", "small", "large"], help="model pool")
    which.add_argument("--model", help="any hub model id or local model directory")
    node.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: model.device in config)")
    node.add_argument("--identity", type=Path, help="swarm.pem to use (created if missing)")
    node.add_argument("--json-events", action="store_true", help="write JSON-line events on stdout")
    node.add_argument("--role", choices=["solver", "proposer"], help="solver trains; proposer publishes problems")
    node.add_argument("--control-stdin", action="store_true",
                      help="take 'stop' and 'finish-round' lines on stdin (where signals cannot reach the node)")
    node.add_argument("--join", metavar="CODE", default=os.environ.get(JOIN_ENV) or None,
                      help="join the hosted swarm of this invite first (later runs with the same data dir go "
                           f"straight on) and run this peer's services beside the node (or ${JOIN_ENV})")
    node.add_argument("--no-dashboard", action="store_true",
                      help="serve no web dashboard (the app and `rl-swarm swarm` show their own)")
    swarm = node.add_argument_group("swarm")
    swarm.add_argument("--swarm", action="store_true", default=None, help="share rollouts over the DHT")
    swarm.add_argument("--initial-peer", action="append", metavar="MADDR", dest="initial_peers",
                       help="multiaddr of a peer to bootstrap from (repeatable; implies --swarm)")
    swarm.add_argument("--dht-port", type=int, metavar="PORT", help="DHT listen port (0: any free port)")
    swarm.add_argument("--expected-peers", type=int, metavar="N",
                       help="stop waiting for rollouts once N other peers are in")
    swarm.add_argument("--gather-timeout", type=float, metavar="SECONDS",
                       help="longest wait for other peers' rollouts each round")
    chain = node.add_argument_group("chain")
    chain.add_argument("--services", type=Path, metavar="FILE",
                       help="local profile: the services.json of a running `rl-swarm services`")
    chain.add_argument("--org-id", help="account (orgId) on the login server (default: the signed-in one)")
    chain.add_argument("--publish-bootnode", action="store_true",
                       help="local profile: put this peer's DHT address on chain for the others")

    swarm_cmd = sub.add_parser("swarm", help="run N peers on this machine (a local swarm)")
    _common(swarm_cmd)
    swarm_cmd.add_argument("--peers", type=int, default=3, help="number of solver peers (default 3)")
    swarm_cmd.add_argument("--rounds", type=int, default=3,
                           help="rounds each peer plays (default 3; 0: until stopped, as a container runs)")
    swarm_cmd.add_argument("--proposer", action="store_true", help="also run a proposer peer")
    swarm_cmd.add_argument("--json-events", action="store_true",
                           help="print every peer's events as JSON lines with a 'peer' field")
    swarm_cmd.add_argument("--pool", choices=["auto", "tiny", "small", "large"], default="tiny",
                           help="model pool of every peer (default tiny: works offline)")
    swarm_cmd.add_argument("--config", type=Path, help="YAML config file for every peer")
    swarm_cmd.add_argument("--no-chain", action="store_true",
                           help="no local chain: rounds are kept by the peers themselves")
    swarm_cmd.add_argument("--no-dashboard", action="store_true", help="serve no web dashboard for the peers")
    swarm_cmd.add_argument("--gpus", metavar="all|0,1,...",
                           help="one peer per GPU (each on its own cuda:N, with its own ports); replaces --peers")

    services = sub.add_parser("services", help="run the local chain, login server and round keeper")
    _common(services)
    services.add_argument("--json", action="store_true",
                          help="first line: a services_ready event (rpc_url, contract, login_url, api_token_file)")
    services.add_argument("--log-events", action="store_true",
                          help="with --json: then every log record as a log event on stdout (for the app)")
    services.add_argument("--control-stdin", action="store_true",
                          help="take a 'stop' line on stdin (where signals cannot reach the services: WSL)")
    services.add_argument("--round-period", type=float, default=60.0, metavar="SECONDS",
                          help="advance the round at least this often (default 60)")

    chain = sub.add_parser("chain", help="the coordinator contract")
    chain_sub = chain.add_subparsers(dest="chain_command", metavar="ACTION")
    status = chain_sub.add_parser("status", help="round, stage, registered peers and the leaderboard")
    _common(status)
    status.add_argument("--json", action="store_true")
    status.add_argument("--config", type=Path, help="YAML config file (for the profile)")
    status.add_argument("--services", type=Path, metavar="FILE",
                        help="local profile: the services.json of a running `rl-swarm services` (as for node)")

    identity = sub.add_parser("identity", help="this peer's identity (swarm.pem)")
    id_sub = identity.add_subparsers(dest="identity_command", metavar="ACTION")
    show = id_sub.add_parser("show", help="print peer id, name and key path (creates the key if missing)")
    _common(show)
    show.add_argument("--identity", type=Path, help="swarm.pem path")
    show.add_argument("--json", action="store_true")

    probe = sub.add_parser("probe", help="hardware check and the model pool it picks")
    _common(probe)
    probe.add_argument("--pool", choices=["tiny", "small", "large"], help="override the chosen pool")
    probe.add_argument("--json", action="store_true")

    selftest = sub.add_parser("self-test", help="check this installation: sandbox, window, services, a tiny round")
    selftest.add_argument("--json", action="store_true", help="one JSON object with every check's verdict")
    selftest.add_argument("--keep", type=Path, metavar="DIR", help="keep the checks' data here (default: a temp dir)")

    add_sharing_commands(sub)
    add_health_command(sub, _common)

    gui = sub.add_parser("gui", help="the desktop app")
    _common(gui)
    gui.add_argument("--screenshot", type=Path, metavar="DIR",
                     help="run a tiny node, save a PNG of every page to DIR, then exit")
    return parser


def cmd_node(args) -> int:

    paths = AppPaths.default(args.data_dir)
    if args.rounds is not None and args.rounds < 1:
        return _fail("--rounds must be at least 1")
    if args.join:
        if args.services is not None:
            return _fail("--join runs this peer's own services: leave out --services")
        failed = join_for_node(args.join, paths)
        if failed is not None:
            return failed
    config_file = args.config if args.config is not None else _default_config(paths)
    overrides = {"model.pool": args.pool, "model.name": args.model, "model.device": args.device, "role": args.role,
                 "swarm.enabled": True if (args.swarm or args.initial_peers) else None,
                 "swarm.initial_peers": args.initial_peers, "swarm.port": args.dht_port,
                 "swarm.expected_peers": args.expected_peers, "swarm.gather_timeout": args.gather_timeout,
                 "chain.services_file": str(args.services) if args.services else None,
                 "chain.org_id": args.org_id, "dashboard.enabled": False if args.no_dashboard else None}
    try:
        config = load_config(config_file, overrides)
        paths.ensure()
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot create data directory {paths.data}: {exc.strerror}")
    setup_logging(paths.logs, "node", config.logging.level, config.logging.max_bytes, config.logging.backups)
    services = None
    if args.join:  # the joined peer's login server on the host's chain, as the app runs it beside the node
        services = ServicesProcess(paths.data, name_data_dir=args.data_dir is not None)
        try:
            services.start()
        except ServicesFailed as exc:
            return _fail(str(exc), 1)
        config.chain.services_file = str(services.services_file)
    try:
        return run_node(config, paths, rounds=args.rounds, json_events=args.json_events, identity_path=args.identity,
                        publish_bootnode=args.publish_bootnode, control_stdin=args.control_stdin,
                        config_file=config_file)
    finally:
        if services is not None:
            services.stop()


def cmd_swarm(args) -> int:

    if not 1 <= args.peers <= 64:
        return _fail("--peers must be between 1 and 64")
    if args.rounds < 0:
        return _fail("--rounds must be 0 (until stopped) or more")
    node_args = ["--pool", args.pool]
    devices: list[str] = []
    if args.gpus is not None:
        try:
            devices = gpu_devices(args.gpus, [g.index for g in probe_gpus()])
        except ValueError as exc:
            return _fail(str(exc))
        args.peers = len(devices)
    paths = AppPaths.default(args.data_dir)
    try:  # fail here once, not in every peer
        config = load_config(args.config or _default_config(paths))
    except ConfigError as exc:
        return _fail(str(exc))
    if args.config is not None:
        node_args += ["--config", str(args.config.resolve())]
    if args.no_dashboard:
        config.dashboard.enabled = False
    base = paths.data / "swarm"
    if not args.json_events:
        how_long = f"{args.rounds} rounds" if args.rounds else "until stopped"
        print(f"local swarm: {args.peers} peers{' + proposer' if args.proposer else ''}, {how_long}, "
              f"data in {base}", flush=True)
    return run_swarm(base, peers=args.peers, rounds=args.rounds, proposer=args.proposer,
                     json_events=args.json_events, node_args=node_args, chain=not args.no_chain,
                     devices=devices, dashboard=config.dashboard)


def gpu_devices(spec: str, present: list[int]) -> list[str]:
    """``--gpus all`` or ``0,2``: the cuda:N of each peer; ValueError says what is wrong."""
    if not present:
        raise ValueError("--gpus: no CUDA GPU found on this machine (run `rl-swarm probe`)")
    if spec.strip().lower() == "all":
        return [f"cuda:{i}" for i in present]
    try:
        wanted = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--gpus: {spec!r} is not 'all' or a list of GPU numbers such as 0,1") from None
    missing = [i for i in wanted if i not in present]
    if not wanted or missing or len(set(wanted)) != len(wanted):
        raise ValueError(f"--gpus: {spec!r}: this machine has GPU(s) {', '.join(map(str, present))}")
    return [f"cuda:{i}" for i in wanted]


def cmd_services(args) -> int:

    if args.log_events and not args.json:
        return _fail("--log-events needs --json")
    paths = AppPaths.default(args.data_dir)
    try:
        config = load_config(_default_config(paths))
        paths.ensure()
    except ConfigError as exc:
        return _fail(str(exc))
    if args.round_period <= 0:
        return _fail("--round-period must be positive")
    setup_logging(paths.logs, "services", config.logging.level)
    sink = EventSink.stdout() if args.json else None
    if sink is not None and args.log_events:
        send_records_as_events(sink.emit)
    remote = None
    if config.profile == "swarm":  # a joined swarm: only our login server, on the host's chain
        joined = read_swarm(paths.data)
        if joined is None:
            return _fail(f"profile is 'swarm' but {paths.data} has joined none: run `rl-swarm join CODE` first")
        remote = RemoteChain(joined["rpc"], joined["contract"], int(joined["chain_id"]))
    hosting = config.hosting if config.hosting.enabled and config.profile == "local" else None
    return run_services(paths.data, events=sink, rpc_port=config.ports.rpc, login_port=config.ports.login,
                        round_period=args.round_period, remote=remote, hosting=hosting,
                        control_stdin=args.control_stdin)


def cmd_chain(args) -> int:
    if args.chain_command != "status":
        return _fail("usage: rl-swarm chain status [--json] [--data-dir DIR]")

    paths = AppPaths.default(args.data_dir)
    try:
        config = load_config(args.config or _default_config(paths),
                             {"chain.services_file": str(args.services) if args.services else None})
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        report = chain_status(config, paths)
    except ChainUnavailable as exc:
        return _fail(str(exc), 1)
    print(json.dumps(report, indent=2) if args.json else format_status(report))
    return 0


def cmd_identity(args) -> int:

    if args.identity_command != "show":
        return _fail("usage: rl-swarm identity show [--identity PATH] [--json]")
    path = args.identity or AppPaths.default(args.data_dir).identity
    try:
        identity, created = load_or_create_identity(path)
    except IdentityError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"peer_id": identity.peer_id, "name": identity.name, "path": str(identity.path)}))
    else:
        note = " (new key created)" if created else ""
        print(f"peer id : {identity.peer_id}\nname    : {identity.name}\nkey     : {identity.path}{note}")
    return 0


def cmd_probe(args) -> int:

    result = probe(AppPaths.default(args.data_dir).data, pool_override=args.pool)
    print(json.dumps(result.to_json(), indent=2) if args.json else format_table(result))
    return 0


def cmd_self_test(args) -> int:
    return run_self_test(json_out=args.json, keep=args.keep)


def cmd_gui(args) -> int:
    from desktop.gui.app import main as gui_main  # Qt only: no torch on this path

    argv = []
    if args.data_dir is not None:
        argv += ["--data-dir", str(args.data_dir)]
    if args.screenshot is not None:
        argv += ["--screenshot", str(args.screenshot)]
    return gui_main(argv)


def has_display() -> bool:
    """A screen the app can open a window on, and the app's toolkit installed."""
    if importlib.util.find_spec("PySide6") is None:
        return False
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # macOS and Windows always have a screen for a desktop session


def main(argv: list[str] | None = None) -> int:
    if FROZEN:  # a PyInstaller app re-enters here for hivemind's DHT process
        import multiprocessing  # only the frozen bundle needs it, before anything else runs

        multiprocessing.freeze_support()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # A double-click or a bare `rl-swarm`: the app where there is a screen, else the headless
        # local swarm (saying so).
        if has_display():
            args = parser.parse_args(["gui"])
        else:
            print("rl-swarm: no display found: running the headless local swarm "
                  "(rl-swarm swarm; see rl-swarm --help for a single node)", file=sys.stderr, flush=True)
            args = parser.parse_args(["swarm"])
    handlers = {"node": cmd_node, "swarm": cmd_swarm, "services": cmd_services, "chain": cmd_chain,
                "identity": cmd_identity, "probe": cmd_probe, "gui": cmd_gui, "self-test": cmd_self_test,
                "pause": cmd_pause, "resume": cmd_resume, "host": cmd_host, "join": cmd_join,
                "swarm-status": cmd_swarm_status, "health": cmd_health}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
