"""A stand-in for `rl-swarm node --json-events`: a real process that speaks the event protocol and
crashes, hangs or exits on cue, in a fraction of a second instead of a torch start-up.

For the app's supervisor logic (restart, stop, finish a round, a crash mid-round), not for the
node itself: the real node's own behaviour is tested in test_node_cli and test_gui_supervisor's
slow tests. Like the real node it resumes after its last finished round (kept in --state), stops
cleanly on SIGTERM and finishes its round on SIGUSR1.

    python tests/standin_node.py [--rounds N] [--round-seconds S|inf] [--state FILE] [--join-round R]
                                 [--chain] [--crash-in-round R [--exit-code C] [--crash-message TEXT]]
                                 [--hang-in-round R] [--follow-pause DATA_DIR]

A round of ``--round-seconds inf`` ends only when the supervisor asks to finish it (SIGUSR1).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.events import EventSink  # noqa: E402  (standard library only: starts in ~50 ms)


def wait_while_paused(data_dir: Path, rnd: int, sink, stop) -> None:
    """The real node's gate, between rounds only: paused / resumed events around the wait."""
    from desktop.machine import pause_control

    path, began = pause_control.control_path(data_dir), None
    while pause_control.read(path).active() and stop["reason"] not in ("sigterm", "stop-command"):
        if began is None:
            began = time.monotonic()
            sink.emit("paused", round=rnd, reason="user", when="now", detail="paused by you")
        time.sleep(0.05)
    if began is not None and stop["reason"] is None:
        sink.emit("resumed", round=rnd, reason="user", seconds=round(time.monotonic() - began, 3))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--round-seconds", type=float, default=0.1)
    parser.add_argument("--state", type=Path, help="where the last finished round is kept (the 'checkpoint')")
    parser.add_argument("--crash-in-round", type=int, help="exit mid-round (no node_stopped), like a crash")
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--crash-message", help="the ERROR record sent before the crash")
    parser.add_argument("--join-round", type=int, help="the swarm is ahead: join at this round")
    parser.add_argument("--chain", action="store_true", help="submit each round's reward (chain_submitted)")
    parser.add_argument("--hang-in-round", type=int, help="stop answering mid-round, ignoring SIGTERM")
    parser.add_argument("--control-stdin", action="store_true", help="'stop' / 'finish-round' lines on stdin")
    parser.add_argument("--follow-pause", type=Path, help="wait between rounds while DATA_DIR's pause file says so")
    args, _node_args = parser.parse_known_args()  # `node --json-events --data-dir …` as the app passes them

    sink = EventSink(sys.stdout)
    stop = {"reason": None}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(reason="sigterm"))
    signal.signal(signal.SIGUSR1, lambda *_: stop.update(reason="finish-round"))
    if args.control_stdin:  # as the real node's StopControl.follow does
        def commands() -> None:
            for line in sys.stdin:
                if line.strip() in ("stop", "finish-round"):
                    stop.update(reason={"stop": "stop-command"}.get(line.strip(), "finish-round"))
        threading.Thread(target=commands, daemon=True).start()
    first = json.loads(args.state.read_text())["next"] if args.state and args.state.exists() else 0
    sink.emit("log", level="INFO", logger="standin", message=f"resuming at round {first}")
    sink.emit("node_started", peer_id="QmStandIn", name="stand in node", model="standin:0", device="cpu",
              round=first, role="solver")
    if args.join_round is not None and args.join_round > first:
        sink.emit("joined_round", round=args.join_round, previous=first)
        first = args.join_round
    last = first - 1
    for rnd in range(first, first + args.rounds):
        if args.follow_pause:
            wait_while_paused(args.follow_pause, rnd, sink, stop)
        if stop["reason"] in ("sigterm", "stop-command"):
            break
        sink.emit("round_started", round=rnd, stage=0, problems=1)
        if rnd == args.crash_in_round:
            sink.emit("log", level="ERROR", logger="standin",
                      message=args.crash_message or f"crashing in round {rnd} on cue")
            os._exit(args.exit_code)
        if rnd == args.hang_in_round:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(3600)
        began = time.monotonic()
        deadline = began + args.round_seconds
        while time.monotonic() < deadline and stop["reason"] not in ("sigterm", "stop-command"):
            if stop["reason"] == "finish-round" and args.round_seconds == float("inf"):
                break
            time.sleep(0.02)
        if stop["reason"] in ("sigterm", "stop-command"):  # a stop mid-round: the round is lost, as with the real node
            break
        reward = round(0.1 * (rnd % 5), 3)
        sink.emit("rewards", round=rnd, mean=reward, own=[reward, reward], transplanted=[])
        sink.emit("train_step", round=rnd, loss=0.5, seconds=0.01, skipped=False, samples=2, own_logp=-0.5,
                  external_logp=None, external_share=0.0)
        took = round(time.monotonic() - began, 3)
        sink.emit("round_finished", round=rnd, seconds=took, generate_s=took,
                  judge_s=0.0, train_s=0.0, comm_s=0.0, reward_mean=reward)
        if args.chain:
            sink.emit("chain_submitted", round=rnd, sent=2, already=0, failed=0, pending=0, error=None)
        last = rnd
        if args.state:
            args.state.write_text(json.dumps({"next": rnd + 1}))
        if stop["reason"] == "finish-round":
            break
    sink.emit("node_stopped", reason=stop["reason"] or "finished", round=last, exit_code=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
