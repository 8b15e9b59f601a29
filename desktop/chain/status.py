"""`rl-swarm chain status`: round, stage, registered peers with names, rewards and wins."""

from __future__ import annotations

from desktop.chain.client import ChainError
from desktop.chain.connect import make_client, resolve_profile
from desktop.identity import peer_name


class ChainUnavailable(Exception):
    """No chain to read, or it cannot be reached; the message is meant for the user."""


def _registered(client) -> list[tuple[str, str]]:
    """(peer id, eoa) of every PeerRegistered event, oldest first."""
    logs = client.contract.events.PeerRegistered.get_logs(from_block=0)
    return [(entry["args"]["peerId"], entry["args"]["eoa"]) for entry in logs]


def chain_status(config, paths) -> dict:
    profile = resolve_profile(config, paths.data)
    if profile is None:
        raise ChainUnavailable("no local chain is running for this data dir: start it with "
                               "`rl-swarm services` (or `rl-swarm swarm`), or use the testnet profile")
    client = make_client(profile, None)
    try:
        round_number, stage = client.round_and_stage()
        peers = _registered(client)
        ids = [pid for pid, _ in peers]
        totals = client.total_rewards(ids) if ids else {}
        wins = {pid: client.total_wins(pid) for pid in ids}
        leaderboard = client.winner_leaderboard(0, 10)
        bootnodes = client.bootnodes()
    except ChainError as exc:
        raise ChainUnavailable(f"cannot read the coordinator at {profile.rpc_url}: {exc}") from None
    except Exception as exc:  # a node that is not an EVM RPC, a wrong contract, ...
        raise ChainUnavailable(f"cannot read the coordinator at {profile.rpc_url}: {type(exc).__name__}: {exc}") from None
    return {
        "profile": profile.name, "rpc_url": profile.rpc_url, "contract": profile.contract_address,
        "round": round_number, "stage": stage,
        "peers": [{"peer_id": pid, "name": peer_name(pid), "eoa": eoa, "total_reward": totals.get(pid, 0),
                   "wins": wins.get(pid, 0)} for pid, eoa in peers],
        "leaderboard": [{"peer_id": pid, "name": peer_name(pid), "wins": n} for pid, n in leaderboard],
        "bootnodes": bootnodes,
    }


def format_status(report: dict) -> str:
    lines = [f"{report['profile']} chain {report['rpc_url']}  coordinator {report['contract']}",
             f"round {report['round']}, stage {report['stage']}", "",
             f"{'peer':28} {'peer id':48} {'reward':>8} {'wins':>5}"]
    for p in sorted(report["peers"], key=lambda p: (-p["total_reward"], -p["wins"])):
        lines.append(f"{p['name'][:28]:28} {p['peer_id'][:48]:48} {p['total_reward']:>8} {p['wins']:>5}")
    if not report["peers"]:
        lines.append("(no peer registered yet)")
    lines += ["", "winner leaderboard"]
    lines += [f"{i + 1:>3}. {e['name']:28} {e['wins']:>5} wins" for i, e in enumerate(report["leaderboard"])]
    if not report["leaderboard"]:
        lines.append("  (no votes yet)")
    lines += ["", "bootnodes"] + [f"  {b[:200]}" for b in report.get("bootnodes", [])]
    if not report.get("bootnodes"):
        lines.append("  (none yet)")
    return "\n".join(lines)
