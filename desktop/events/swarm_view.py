"""The swarm as a user sees it: one row per peer known from the DHT (what this node heard) or from
the chain (registered peers, rewards, wins). No Qt: the app's Swarm page and `rl-swarm
swarm-status` show the same rows."""

from __future__ import annotations

from typing import Callable

MAX_ROWS = 200


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return "—"
    seconds = max(0, now - ts)
    return f"{seconds:.0f} s ago" if seconds < 90 else f"{seconds / 60:.0f} min ago" if seconds < 5400 else \
        f"{seconds / 3600:.0f} h ago"


def merge(chain: dict | None, heard: dict[str, dict], me: str | None, names: Callable[[str], str],
          my_round: int | None = None) -> list[dict]:
    """One row per peer: the chain's registered peers and those heard on the DHT, this peer
    first, then by total reward; at most MAX_ROWS."""
    rows: dict[str, dict] = {}
    for p in (chain or {}).get("peers", []):
        if isinstance(p, dict) and isinstance(p.get("peer_id"), str):
            rows[p["peer_id"]] = {"peer_id": p["peer_id"], "name": str(p.get("name") or names(p["peer_id"])),
                                  "total_reward": p.get("total_reward"), "wins": p.get("wins")}
    for peer, info in heard.items():
        row = rows.setdefault(peer, {"peer_id": peer, "name": names(peer), "total_reward": None, "wins": None})
        row.update(round=info.get("round"), ts=info.get("ts"))
    if me:
        rows.setdefault(me, {"peer_id": me, "name": names(me), "total_reward": None, "wins": None})
        rows[me]["round"] = my_round
    for row in rows.values():
        row["me"] = row["peer_id"] == me
    ordered = sorted(rows.values(), key=lambda r: (not r["me"], -(r.get("total_reward") or 0), r["name"]))
    return ordered[:MAX_ROWS]


def cells(row: dict, now: float) -> list[str]:
    """A row's columns as text: peer, peer id, round, total reward, wins, last heard."""
    dash = lambda v: "—" if v is None else str(v)  # noqa: E731
    return [row["name"] + ("  (you)" if row["me"] else ""), row["peer_id"], dash(row.get("round")),
            dash(row.get("total_reward")), dash(row.get("wins")), "this peer" if row["me"] else ago(row.get("ts"), now)]


def format_table(rows: list[dict], now: float) -> str:
    lines = [f"{'peer':34} {'peer id':54} {'round':>6} {'reward':>8} {'wins':>5}  last heard"]
    for row in rows:
        peer, pid, rnd, reward, wins, heard = cells(row, now)
        lines.append(f"{peer[:34]:34} {pid[:54]:54} {rnd:>6} {reward:>8} {wins:>5}  {heard}")
    return "\n".join(lines)
