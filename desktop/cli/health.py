"""`rl-swarm health`: is the node on this data dir really working? (the container's health check)

"The process exists" says nothing users need: a node can sit crashed behind a live launcher, or
hang. This asks the node's own web dashboard (the one source of truth the page and the app read)
and judges what every peer last said: healthy while each one starts, trains, waits for its round
or is paused by its user; unhealthy when the page does not answer, a peer crashed, or no peer has
said anything for ``--stale`` seconds. One line on stdout; exit 0 healthy, 1 not.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from desktop.config import ConfigError, load_config
from desktop.cli.common import default_config, fail
from desktop.dashboard.token import read_token
from desktop.utils.paths import AppPaths

STALE_S = 1800.0   # a round of a large model on a slow machine, with room to spare
TIMEOUT_S = 5.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def add_health_command(sub, add_data_dir) -> None:
    health = sub.add_parser("health", help="exit 0 when the node (or local swarm) on this data dir is working, "
                                           "1 when not: the container's health check")
    add_data_dir(health)
    health.add_argument("--config", type=Path, help="YAML config file the node was started with (for the port)")
    health.add_argument("--stale", type=float, default=STALE_S, metavar="SECONDS",
                        help=f"unhealthy after this long without news from any peer (default {STALE_S:.0f})")
    health.add_argument("--url", action="store_true",
                        help="print the dashboard's address with its token instead (a container's logs never "
                             "carry the token)")


def _tokens(data: Path) -> list[str]:
    """The dashboard tokens of `rl-swarm node` (<data>/dashboard) and `rl-swarm swarm` (<data>/swarm/dashboard)."""
    return [token for token in (read_token(data), read_token(data / "swarm")) if token is not None]


def read_state(port: int, tokens: list[str]) -> tuple[dict, str] | None:
    """(/api/state of the dashboard on 127.0.0.1:port, the first token it accepts); None if none."""
    for token in tokens:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/state", headers={"X-Dashboard-Token": token})
        try:
            with _DIRECT.open(request, timeout=TIMEOUT_S) as reply:
                state = json.loads(reply.read(4 << 20))
        except urllib.error.HTTPError:
            continue  # another mode's token: try the next
        except (OSError, ValueError):
            return None
        if isinstance(state, dict) and isinstance(state.get("peers"), list):
            return state, token
    return None


def judge(state: dict, now: float, stale: float) -> tuple[bool, str]:
    """(healthy, one line) from the dashboard's state of every peer."""
    peers = [p for p in state["peers"] if isinstance(p, dict)]
    if not peers:
        return False, "the dashboard lists no peer"
    crashed = [p for p in peers if p.get("state") == "crashed"]
    if crashed:
        exit_code = (crashed[0].get("exit") or {}).get("exit_code")
        return False, f"{crashed[0].get('label')} crashed (exit code {exit_code})"
    newest = max(float(p.get("updated") or 0) for p in peers)
    if now - newest > stale:
        return False, f"no news from any peer for {(now - newest) / 60:.0f} min"
    if all(p.get("state") == "stopped" for p in peers):
        return False, "every peer has stopped"
    return True, ", ".join(f"{p.get('label')} {p.get('state')}" + (f" round {p['round']}" if p.get("round") is not None
                                                                   else "") for p in peers)


def cmd_health(args) -> int:
    paths = AppPaths.default(args.data_dir)
    try:
        config = load_config(args.config or default_config(paths))
    except ConfigError as exc:
        return fail(str(exc))
    if not config.dashboard.enabled:
        return fail("the health check reads the node's dashboard, and dashboard.enabled is false", 1)
    port = config.dashboard.port
    answer = read_state(port, _tokens(paths.data))
    if answer is None:
        print(f"unhealthy: no dashboard of this data dir answers on 127.0.0.1:{port}")
        return 1
    state, token = answer
    if args.url:
        print(f"http://127.0.0.1:{port}/?token={token}")
        return 0
    healthy, said = judge(state, time.time(), args.stale)
    print(("healthy: " if healthy else "unhealthy: ") + said)
    return 0 if healthy else 1
