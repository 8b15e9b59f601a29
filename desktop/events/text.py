"""Events as text: the one place a protocol event becomes a readable line.

The Logs page, the headless node's progress lines and the local swarm's log all read events
through :func:`describe`, so an event reads the same everywhere. Standard library only: the GUI
imports it. Levels are the ``logging`` module's numbers.
"""

from __future__ import annotations

import logging

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


def record_level(name: object) -> int:
    """A ``log`` event's level name as one of the four levels shown (CRITICAL reads as ERROR, a
    custom level as the one below it, an unknown name as INFO): a peer's text picks no new level."""
    level = logging.getLevelName(name) if isinstance(name, str) else None
    if not isinstance(level, int):
        return INFO
    return ERROR if level >= ERROR else WARNING if level >= WARNING else INFO if level >= INFO else DEBUG


def describe(ev: dict) -> tuple[int, str]:
    """A protocol event as (level, one readable line)."""
    kind, r = ev.get("type", "?"), ev.get("round")
    if kind == "log":
        return record_level(ev["level"]), f"{ev['logger']}: {ev['message']}"
    if kind == "services_ready":
        return INFO, f"local chain at {ev['rpc_url']} (coordinator {ev['contract']}), login page at {ev['login_url']}"
    if kind == "hosting":
        if ev["error"]:
            return WARNING, f"not hosting: {ev['error']}"
        yes = lambda ok: "answers" if ok else "does NOT answer"  # noqa: E731
        return INFO, (f"hosting '{ev['name']}' for other machines at {ev['address']}: chain proxy {ev['rpc']} "
                      f"{yes(ev['rpc_answers'])}, bootnode {yes(ev['dht_answers'])}")
    if kind == "node_started":
        return INFO, (f"node started: {ev['name']} ({ev['peer_id']}), model {ev['model']} on {ev['device']}, "
                      f"role {ev['role']}, from round {r}")
    if kind == "download":
        total = ev.get("total")
        done = f"{ev['downloaded'] / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "")
        return INFO, f"downloading {ev['model']}: {ev['file']} {done} MB"
    if kind == "round_started":
        return INFO, f"round {r} stage {ev['stage']} started with {ev['problems']} problem(s)"
    if kind == "rollouts":
        rejected = sum(ev["rejected"].values()) if isinstance(ev.get("rejected"), dict) else 0
        return INFO, (f"round {r}: {ev['own']} own rollouts, {ev['received']} received from "
                      f"{len(ev['peers'])} peer(s)" + (f", {rejected} rejected" if rejected else ""))
    if kind == "dht_ready":
        return INFO, f"swarm (DHT) ready: {len(ev['maddrs'])} address(es)"
    if kind == "rewards":
        return INFO, (f"round {r}: mean reward {ev['mean']:.3g} over {len(ev['own'])} own and "
                      f"{len(ev['transplanted'])} transplanted rollouts")
    if kind == "train_step":
        if ev["skipped"]:
            return INFO, f"round {r}: training step skipped ({ev['samples']} samples, no reward spread)"
        health = f", own tokens {ev['own_logp']:.2f} nats" if isinstance(ev.get("own_logp"), (int, float)) else ""
        return INFO, (f"round {r}: trained on {ev['samples']} samples, loss {ev['loss']:.4g} in {ev['seconds']:.2f} s"
                      f"{health}")
    if kind == "skill":
        return INFO, (f"round {r}: skill {ev['pass_rate']:.0%} of {ev['problems']} held-out problems solved "
                      f"(reward {ev['reward']:+.2f}, {ev['seconds']:.1f} s)")
    if kind == "round_finished":
        return INFO, (f"round {r} finished in {ev['seconds']:.2f} s: reward {ev['reward_mean']:.3g} "
                      f"(generate {ev['generate_s']:.2f}, judge {ev['judge_s']:.2f}, train {ev['train_s']:.2f}, "
                      f"comm {ev['comm_s']:.2f} s)")
    if kind == "checkpoint":
        return INFO, f"round {r}: checkpoint saved to {ev['path']}"
    if kind == "paused":
        later = " after this round" if ev["when"] == "after-round" else ""
        return INFO, f"paused{later} ({ev['reason']}): {ev['detail']}"
    if kind == "resumed":
        return INFO, f"resumed after {ev['seconds']:.0f} s paused ({ev['reason']})"
    if kind == "joined_round":
        return INFO, f"joined round {r} (the swarm was ahead of round {ev['previous']})"
    if kind == "hf_push":
        return (INFO, f"round {r}: pushed to {ev['repo']}") if ev["ok"] else (
            WARNING, f"round {r}: push to {ev['repo']} failed")
    if kind == "proposer":
        return INFO, f"round {r}: proposer at difficulty {ev['difficulty']}, {ev['feedback']} feedback"
    if kind == "chain_submitted":
        text = (f"round {r}: chain submissions {ev['sent']} sent, {ev['already']} already there, "
                f"{ev['failed']} failed, {ev['pending']} pending")
        return (WARNING, f"{text}: {ev['error']}") if ev["failed"] or ev["error"] else (INFO, text)
    if kind == "warning":
        return WARNING, ev["message"]
    if kind == "error":
        return ERROR, ev["message"]
    if kind == "node_stopped":
        level = INFO if ev["exit_code"] == 0 else ERROR
        return level, f"node stopped ({ev['reason']}) after round {r}, exit code {ev['exit_code']}"
    return INFO, f"{kind}: " + ", ".join(f"{k}={v}" for k, v in ev.items() if k not in ("v", "type", "ts"))
