"""A node's state folded from its events: the one reading of the protocol that the app's dashboard
and the local swarm's table (`rl-swarm swarm`) both show. No Qt: plain data and rules."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from desktop.utils.fsutil import write_private

HISTORY_ROUNDS = 500
MAX_PEERS = 512  # the swarm view keeps the most recently heard of this many peers
_PHASES = {"round_started": "generating", "rollouts": "judging", "rewards": "training", "train_step": "saving"}


@dataclass
class NodeStatus:
    peer_id: str = ""
    name: str = ""
    model: str = ""
    device: str = ""
    round: int | None = None
    stage: int | None = None
    last_reward: float | None = None
    total_reward: float = 0.0  # sum of each finished round's mean reward
    peers_seen: set[str] = field(default_factory=set)
    transplanted: int = 0  # other peers' rollouts trained on, counted like total_reward
    state: str = "stopped"  # a short phrase for the dashboard
    last_round_seconds: float | None = None
    last_completed: int | None = None
    history: list[dict] = field(default_factory=list)  # one row per finished round, newest last
    submitted: int = 0      # rewards, votes and registrations the chain accepted (or had already)
    pending: int = 0        # still queued on disk for the chain
    chain_error: str | None = None  # why the last flush stopped early, if it did
    paused: str | None = None  # why the node waits (desktop.machine.work_window.REASONS), None while it works
    heard: dict[str, dict] = field(default_factory=dict)  # peer id -> {"round", "ts"}: rollouts from it
    skill: dict | None = None  # the last held-out evaluation: round, pass_rate, reward, problems
    own_logp: float | None = None  # the last step's mean log-prob of own sampled tokens (policy health)
    _loss: float | None = field(default=None, repr=False)

    def snapshot(self) -> "NodeStatus":
        # the rows themselves are never changed once appended: a shallow copy of the list is enough
        return dataclasses.replace(self, peers_seen=set(self.peers_seen), history=list(self.history),
                                   heard={k: dict(v) for k, v in self.heard.items()})

    def load_history(self, rows: list[dict]) -> None:
        """Rounds played before this launch (events.history): the charts and totals start from them."""
        self.history = list(rows)[-HISTORY_ROUNDS:]
        self.total_reward = sum(float(r.get("reward_mean") or 0.0) for r in rows)
        if rows:
            self.last_completed = rows[-1]["round"]
            self.last_reward = rows[-1].get("reward_mean")
            skills = [r for r in rows if r.get("skill") is not None]
            if skills and self.skill is None:
                self.skill = {"round": skills[-1]["round"], "pass_rate": skills[-1]["skill"], "reward": None,
                              "problems": None}

    def new_run(self) -> None:
        self._loss, self.last_completed = None, None

    def apply(self, ev: dict) -> bool:
        """Fold one protocol event in; False when it changes nothing the app shows."""
        kind = ev["type"]
        if kind == "node_started":
            self.peer_id, self.name, self.model, self.device = ev["peer_id"], ev["name"], ev["model"], ev["device"]
            self.round, self.state = ev["round"], "waiting for a round"
        elif kind == "download":
            total = ev["total"]
            pct = f" {100 * ev['downloaded'] // total}%" if total else ""
            self.state = f"downloading {ev['file']}{pct}"
        elif kind == "dht_ready":
            self.state = "connected to the swarm"
        elif kind == "joined_round":
            self.round = ev["round"]
        elif kind == "round_started":
            self.round, self.stage, self._loss = ev["round"], ev["stage"], None
        elif kind == "rollouts":
            peers = [p for p in ev["peers"] if isinstance(p, str)]
            self.peers_seen.update(peers)
            for peer in peers:
                self.heard[peer] = {"round": ev["round"], "ts": ev.get("ts", 0.0)}
            if len(self.heard) > MAX_PEERS:
                for peer, _ in sorted(self.heard.items(), key=lambda kv: kv[1]["ts"])[:len(self.heard) - MAX_PEERS]:
                    del self.heard[peer]
        elif kind == "rewards":
            self.last_reward = float(ev["mean"])
            self.transplanted += len(ev["transplanted"])
        elif kind == "train_step":
            self._loss = ev["loss"]
            if ev.get("own_logp") is not None:
                self.own_logp = ev["own_logp"]
        elif kind == "skill":
            self.skill = {k: ev[k] for k in ("round", "pass_rate", "reward", "problems")}
        elif kind == "round_finished":
            self.total_reward += ev["reward_mean"]
            self.last_round_seconds, self.last_completed = ev["seconds"], ev["round"]
            self.history.append({"round": ev["round"], "reward_mean": ev["reward_mean"], "loss": self._loss,
                                 "skill": self.skill["pass_rate"] if self.skill else None,
                                 **{k: ev[k] for k in ("generate_s", "judge_s", "train_s", "comm_s")}})
            del self.history[:-HISTORY_ROUNDS]
            self.state = "waiting for the next round"
        elif kind == "chain_submitted":
            self.submitted += ev["sent"] + ev["already"]
            self.pending, self.chain_error = ev["pending"], ev["error"]
        elif kind == "proposer":
            self.round, self.state = ev["round"], f"round {ev['round']}: proposing at level {ev['difficulty']}"
        elif kind == "paused":
            self.paused = ev["reason"]
            self.state = f"paused: {ev['detail']}" if ev["detail"] else f"paused ({ev['reason']})"
        elif kind == "resumed":
            self.paused, self.state = None, "resumed"
        elif kind == "node_stopped":
            self.paused = None
            if ev["round"] >= 0:
                self.last_completed = ev["round"]
            self.state = "stopping"
        else:
            return False  # checkpoint, hf_push, log, warning, error: nothing on the status card
        if kind in _PHASES:
            self.state = f"round {self.round}: {_PHASES[kind]}"
        return True


# ---- the status file: a running node's view for other processes (`rl-swarm swarm-status`) -------
STATUS_FILE = "node-status.json"
MAX_STATUS_BYTES = 1024 * 1024
_WRITE_ON = {"node_started", "dht_ready", "round_finished", "skill", "paused", "resumed", "node_stopped"}


class StatusFile:
    """An event listener that keeps ``<data dir>/node-status.json`` (peer, round, state, rewards,
    the peers heard on the DHT) up to date: rewritten atomically when something a reader shows
    changes at a round's end or a change of state, never per token or step."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.status = NodeStatus()

    def __call__(self, ev: dict) -> None:
        if not self.status.apply(ev) or ev["type"] not in _WRITE_ON or not self.status.peer_id:
            return  # nothing before node_started: a node refused at start leaves no file
        s = self.status
        state = "stopped" if ev["type"] == "node_stopped" else s.state
        data = {"peer_id": s.peer_id, "name": s.name, "round": s.round, "state": state,
                "last_reward": s.last_reward, "total_reward": round(s.total_reward, 4), "skill": s.skill,
                "heard": s.heard, "updated": time.time()}
        try:
            write_private(self.path, json.dumps(data).encode())
        except OSError:  # a full disk must not stop training; the app has the events anyway
            pass


def read_status_file(path) -> dict | None:
    """What StatusFile last wrote, checked; None when there is none or it is not ours."""
    try:
        raw = Path(path).read_bytes()[:MAX_STATUS_BYTES + 1]
        data = json.loads(raw) if len(raw) <= MAX_STATUS_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("peer_id"), str):
        return None
    heard = data.get("heard") if isinstance(data.get("heard"), dict) else {}
    data["heard"] = {k: v for k, v in list(heard.items())[:MAX_PEERS] if isinstance(k, str) and isinstance(v, dict)}
    return data
