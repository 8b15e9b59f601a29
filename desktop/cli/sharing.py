"""`rl-swarm pause` / `resume` (the user's pause of a node) and `rl-swarm host` / `join` (a swarm
shared between machines): the commands about sharing this computer and this swarm with others."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from desktop.chain.status import ChainUnavailable, chain_status
from desktop.cli.common import add_data_dir as _common, default_config as _default_config, fail as _fail
from desktop.cli.join import JoinError, check_invite, join, joined_already
from desktop.config import ConfigError, load_config
from desktop.events.status import STATUS_FILE, read_status_file
from desktop.events.swarm_view import format_table, merge
from desktop.identity import peer_name
from desktop.machine import pause_control
from desktop.services.host import run_host
from desktop.services.invites import InviteBook, InviteError, printable, when
from desktop.services.opening import make_invite
from desktop.utils.logs import setup_logging
from desktop.utils.paths import AppPaths


def add_sharing_commands(sub) -> None:
    pause = sub.add_parser("pause", help="pause the node (a running one within seconds; it stays paused "
                                         "across restarts until resumed)")
    _common(pause)
    pause.add_argument("--after-round", action="store_true", help="let the round in progress finish first")
    how_long = pause.add_mutually_exclusive_group()
    how_long.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 30m, 1h, 2d (default: until resumed)")
    how_long.add_argument("--until-tomorrow", action="store_true", help="until 08:00 tomorrow")
    resume = sub.add_parser("resume", help="resume a node paused by `rl-swarm pause` or the app")
    _common(resume)

    host = sub.add_parser("host", help="host a swarm for other machines (chain proxy, join desk, bootnode) "
                                       "and manage its invites")
    _common(host)
    _host_options(host, None)
    actions = host.add_subparsers(dest="action", metavar="ACTION")
    # Every action takes the options both before and after its name (`host --data-dir D revoke ID`
    # and `host revoke --data-dir D ID`): the actions' copies default to SUPPRESS, so they never
    # overwrite what was given before the action's name.
    for name, text in (("run", "run the hosted swarm (the default)"), ("invite", "make another invite"),
                       ("revoke", "make an invite worthless at once"), ("list", "the invites and their uses")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="as before the action")
        _host_options(action, argparse.SUPPRESS)
        if name == "revoke":
            action.add_argument("invite_id", help="the invite's id (from `rl-swarm host list`)")
    join = sub.add_parser("join", help="join a hosted swarm with an invite code")
    _common(join)
    join.add_argument("code", help="the invite code (rlsw2.…) or link (rlswarm://join?code=…)")
    join.add_argument("--email", help="this peer's account on the swarm (default: made from the invite)")
    join.add_argument("--check", action="store_true", help="only check from this machine that the invited swarm "
                                                           "answers (nothing saved, no use of the invite spent)")
    status = sub.add_parser("swarm-status", help="every peer this node heard on the DHT or the chain lists: "
                                                 "rounds, rewards, wins, last heard; the leaderboard")
    _common(status)
    status.add_argument("--json", action="store_true")


def _host_options(parser, default) -> None:
    """The options of `rl-swarm host` and its actions; ``default`` SUPPRESS for the actions' copies."""
    def given_or(value):
        return default if default is argparse.SUPPRESS else value

    parser.add_argument("--bind", default=given_or(None),
                        help="interface others reach (default: config hosting.bind, all interfaces)")
    parser.add_argument("--advertise", default=given_or(None),
                        help="the address invites name (default: the bind address or this machine's LAN "
                             "address; behind NAT: the router's public one)")
    parser.add_argument("--port", type=int, default=given_or(None), help="chain proxy and join desk port (default 8546)")
    parser.add_argument("--dht-port", type=int, default=given_or(None), help="bootnode port (default 4001)")
    parser.add_argument("--name", default=given_or(None), help="the swarm's name, shown to joiners "
                                                                "(default: config hosting.name)")
    parser.add_argument("--uses", type=int, default=given_or(1), help="joins an invite allows (default 1)")
    parser.add_argument("--expires", default=given_or("24h"), help="an invite's lifetime (default 24h)")


def cmd_pause(args) -> int:
    until = None
    try:
        if args.duration:
            until = time.time() + pause_control.parse_duration(args.duration)
        elif args.until_tomorrow:
            until = pause_control.tomorrow_morning()
    except ValueError as exc:
        return _fail(str(exc))
    path = pause_control.control_path(AppPaths.default(args.data_dir).data)
    try:
        pause_control.pause(path, "after-round" if args.after_round else "now", until)
    except pause_control.ControlFileError as exc:
        return _fail(str(exc))
    moment = "after the round in progress" if args.after_round else "at the next safe point"
    span = f" until {time.strftime('%a %H:%M', time.localtime(until))}" if until else " until `rl-swarm resume`"
    print(f"paused {moment}{span} ({path})")
    return 0


def cmd_resume(args) -> int:
    path = pause_control.control_path(AppPaths.default(args.data_dir).data)
    was = pause_control.read(path).active()
    try:
        pause_control.resume(path)
    except pause_control.ControlFileError as exc:
        return _fail(str(exc))
    print("resumed" if was else "was not paused")
    return 0


def cmd_host(args) -> int:
    paths = AppPaths.default(args.data_dir)
    args.action = args.action or "run"
    try:
        expires = pause_control.parse_duration(args.expires)
    except ValueError as exc:
        return _fail(f"--expires: {exc}")
    if args.uses < 1:
        return _fail("--uses must be at least 1")
    book = InviteBook(paths.data)
    try:
        if args.action == "invite":
            invite = make_invite(paths.data, uses=args.uses, expires_in=expires)
            print(f"{invite.code()}\n{invite.link()}\n(id {invite.id}: {args.uses} use(s), {args.expires})")
            return 0
        if args.action == "revoke":
            if not book.revoke(args.invite_id):
                return _fail(f"no invite {printable(args.invite_id, 40)!r} (see rl-swarm host list)")
            print(f"revoked {args.invite_id}: its code no longer funds anyone")
            return 0
        if args.action == "list":
            for invite_id, e in book.entries().items():
                state = "revoked" if e.revoked else "expired" if e.expires <= time.time() else f"{e.uses_left} use(s) left"
                print(f"{invite_id}  {state:<16} expires {when(e.expires)}  joined {len(e.joined)}")
            return 0
    except InviteError as exc:
        return _fail(str(exc))
    try:
        config = load_config(_default_config(paths))
        paths.ensure()
    except ConfigError as exc:
        return _fail(str(exc))


    chosen = {k: v for k, v in {"bind": args.bind, "advertise": args.advertise, "port": args.port,
                                "dht_port": args.dht_port, "name": args.name}.items() if v is not None}
    try:
        settings = type(config.hosting).model_validate({**config.hosting.model_dump(), **chosen})
    except ValidationError as exc:
        return _fail(f"bad hosting option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    setup_logging(paths.logs, "host", config.logging.level)
    return run_host(paths.data, settings=settings, rpc_port=config.ports.rpc, login_port=config.ports.login,
                    round_period=60.0, uses=args.uses, expires_in=expires)


def cmd_join(args) -> int:
    if args.check:

        results = check_invite(args.code)
        for what, ok, detail in results:
            print(f"{'ok ' if ok else 'NO '} {what:<10} {detail}")
        return 0 if all(ok for _, ok, _ in results) else 1
    paths = AppPaths.default(args.data_dir)
    try:  # no folders made up front: a join that fails leaves the data dir as it was
        joined = join(args.code, paths.data, paths.config_file, email=args.email)
    except JoinError as exc:
        return _fail(str(exc), exc.exit_code)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"joined '{joined.name}' as {joined.address} ({'funded by the host' if joined.funded else 'already funded'})\n"
          f"start: rl-swarm services & rl-swarm node   (or the app: it starts both)")
    return 0


def join_for_node(code: str, paths: AppPaths) -> int | None:
    """`rl-swarm node --join CODE`: join the invite's swarm unless this data dir already has (a
    container started again goes straight on). None when the node may start, else its exit code.
    Said on stderr: stdout may carry the node's events."""
    try:
        if joined_already(code, paths.data):
            print(f"rl-swarm: {paths.data} has joined this swarm already; starting the node", file=sys.stderr)
            return None
        joined = join(code, paths.data, paths.config_file)
    except InviteError as exc:
        return _fail(str(exc))
    except JoinError as exc:
        return _fail(str(exc), exc.exit_code)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"rl-swarm: joined '{joined.name}' as {joined.address} "
          f"({'funded by the host' if joined.funded else 'already funded'})", file=sys.stderr, flush=True)
    return None


def cmd_swarm_status(args) -> int:
    paths = AppPaths.default(args.data_dir)
    try:
        config = load_config(_default_config(paths))
    except ConfigError as exc:
        return _fail(str(exc))
    node = read_status_file(paths.data / STATUS_FILE)  # the DHT side: what this data dir's node heard
    try:
        chain, chain_error = chain_status(config, paths), None
    except ChainUnavailable as exc:
        chain, chain_error = None, str(exc)
    if node is None and chain is None:
        return _fail(f"nothing to show: no node has run on {paths.data} and {chain_error}", 1)
    seen = node or {}
    heard = seen.get("heard", {})
    rows = merge(chain, heard, seen.get("peer_id"), peer_name, seen.get("round"))
    now = time.time()
    if args.json:
        print(json.dumps({"node": node, "chain": chain, "chain_error": chain_error, "peers": rows}, indent=2))
        return 0
    if node is None:
        print(f"no node has run on {paths.data} yet: peers heard on the DHT appear once one does")
    else:
        updated = now - float(node.get("updated") or 0)
        print(f"this peer {node.get('name')}: {node.get('state')} (news {updated:.0f} s old), "
              f"{len(heard)} peer(s) heard on the DHT")
    print(f"chain: round {chain['round']}, {len(chain['peers'])} registered peer(s) ({chain['profile']}, "
          f"{chain['rpc_url']})" if chain else f"chain: {chain_error}")
    print("\n" + format_table(rows, now))
    board = (chain or {}).get("leaderboard", [])[:10]
    if board:
        print("\nleaderboard\n" + "\n".join(f"{i + 1:>3}. {e['name']:34} {e['wins']:>5} wins"
                                              for i, e in enumerate(board)))
    return 0
