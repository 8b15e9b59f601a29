"""The game loop of one peer: data -> generate -> reward -> train -> checkpoint -> events.

Reads like the round it plays. Everything heavy (model, judge, swarm) is built by ``NodeParts``
so tests and benchmarks can put the same loop together from other parts.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from desktop.codezero.problems import Problem
from desktop.codezero.rewards import codezero_reward
from desktop.events import EventSink
from desktop.node.checkpoint import CheckpointStore
from desktop.node.grpo import GRPOTrainer, Group
from desktop.swarm.records import batch_id_of
from desktop.node.rounds import (Communication, LocalRoundSource, PeerRollouts, RoundSource, SinglePeer,
                                 WaitInterrupted)

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Solve the user's task. Answer with the complete "
    "solution in a single ```python code block, then stop."
)


class StopControl:
    """Asked from signal handlers or other threads: stop now, or after the current round."""

    def __init__(self) -> None:
        self.now = threading.Event()
        self.after_round = threading.Event()
        self.reason = "finished"

    def stop(self, reason: str = "signal") -> None:
        self.reason = reason
        self.now.set()

    def finish_round(self, reason: str = "finish-round") -> None:
        self.reason = reason
        self.after_round.set()


class Interrupted(Exception):
    """The round was abandoned because the node was asked to stop now."""


@dataclass
class RoundStats:
    round: int
    reward_mean: float
    loss: float | None
    times: dict = field(default_factory=dict)
    peer_rewards: dict = field(default_factory=dict)
    reward_sum: float = 0.0  # own rewards of the round, summed
    confirmed: bool = False  # the chain named this round (else it was played while the chain was away)


class Node:
    def __init__(self, *, trainer: GRPOTrainer, model_name: str, problems, judge, sink: EventSink,
                 checkpoints: CheckpointStore, stages: int = 1, problems_per_round: int = 1,
                 round_source: RoundSource | None = None, comms: Communication | None = None,
                 stop: StopControl | None = None, after_round=None, workers: int = 2,
                 num_transplant_trees: int = 2, proposals=None) -> None:
        self.trainer = trainer
        self.model_name = model_name
        self.problems = problems
        self.judge = judge
        self.sink = sink
        self.checkpoints = checkpoints
        self.stages = stages
        self.problems_per_round = problems_per_round
        self.round_source = round_source or LocalRoundSource()
        self.comms = comms or SinglePeer()
        self.stop = stop or StopControl()
        self.after_round = [hook for hook in (after_round or []) if hook]  # hook(round, stats): chain, hub
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="judge")
        self.num_transplant_trees = num_transplant_trees
        self.proposals = proposals  # SolverChannel: proposer problems in, reward feedback out
        self.last_completed: int | None = None
        self.step = 0  # rounds played by this node, whatever their numbers: indexes its problem stream

    def resume(self) -> int | None:
        resumed = self.checkpoints.restore(self.trainer.model, self.trainer.optimizer, self.model_name)
        if resumed is None:
            return None
        for skipped in resumed.skipped:
            self.sink.emit("warning", message=f"checkpoint skipped: {skipped}")
        self.last_completed = resumed.round
        self.step = int(resumed.extra.get("step", resumed.round + 1))
        if "confirmed" in resumed.extra and hasattr(self.round_source, "confirmed"):
            self.round_source.confirmed = resumed.extra["confirmed"]
        log.info("resumed from %s (round %d)", resumed.path, resumed.round)
        return resumed.round

    # ---- one round -----------------------------------------------------------------------------
    def _check_stop(self) -> None:
        if self.stop.now.is_set():
            raise Interrupted()

    def _judge_group(self, group: Group, problem: Problem) -> list[float]:
        jobs = [self.pool.submit(codezero_reward, text, problem, self.judge, hit_token_limit=limit)
                for text, limit in zip(group.texts, group.hit_limit)]
        return [float(job.result()) for job in jobs]

    def _transplant_groups(self, received: list[PeerRollouts], own_problems: dict[str, tuple[Problem, list[int]]],
                           round_number: int) -> list[tuple[Group, Problem]]:
        """Up to ``num_transplant_trees`` peers' rollouts on problems we hold the tests of, with
        exactly G completions and a matching batch id; tokenised once, judged here."""
        usable = [peer for peer in received
                  if peer.question in own_problems and peer.batch_id == batch_id_of(peer.question)
                  and len(peer.completions) == self.trainer.settings.num_generations]
        if len(usable) > self.num_transplant_trees:
            usable = random.Random(round_number).sample(usable, self.num_transplant_trees)
        out = []
        for peer in usable:
            problem, prompt_ids = own_problems[peer.question]  # the prompt we encoded for our own rollouts
            out.append((Group.from_text(self.trainer.tokenizer, problem.question, prompt_ids,
                                        peer.completions, self.trainer.settings.max_new_tokens,
                                        source=peer.peer_id), problem))
        return out

    def _proposer_problem(self, round_number: int) -> Problem | None:
        """One problem from a proposer on the DHT per round, when there is one."""
        if self.proposals is None:
            return None
        try:
            return self.proposals.fetch_problem(round_number)
        except Exception as exc:  # a peer's problem is a bonus, never a reason to stop
            log.warning("could not fetch a proposer problem: %s", exc)
            return None

    def _send_feedback(self, round_number: int, problem: Problem, rewards: list[float]) -> None:
        try:
            self.proposals.publish_feedback(round_number, problem.id, rewards)
        except Exception as exc:
            log.warning("could not send feedback to the proposer: %s", exc)

    @staticmethod
    def messages(problem: Problem) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem.question}]

    def play_round(self, round_number: int, confirmed: bool = False) -> RoundStats:
        times = {"generate": 0.0, "reward": 0.0, "train": 0.0, "comm": 0.0}
        started = time.perf_counter()
        all_rewards: list[float] = []
        by_peer: dict[str, list[float]] = {}
        loss = None
        for stage in range(self.stages):
            problems = [self.problems.next(self.step * self.problems_per_round * self.stages
                                           + stage * self.problems_per_round + k)
                        for k in range(self.problems_per_round)]
            proposed = self._proposer_problem(round_number)
            if proposed is not None:
                problems.append(proposed)
            self.sink.emit("round_started", round=round_number, stage=stage, problems=len(problems))
            self._check_stop()

            t = time.perf_counter()
            prompt_ids = [self.trainer.encode_prompt(self.messages(p)) for p in problems]
            groups = self.trainer.generate([p.question for p in problems], prompt_ids,
                                           should_stop=self.stop.now.is_set)
            times["generate"] += time.perf_counter() - t
            self._check_stop()

            t = time.perf_counter()
            received = self.comms.exchange(round_number, stage, groups)
            times["comm"] += time.perf_counter() - t
            transplants = self._transplant_groups(
                received, {p.question: (p, ids) for p, ids in zip(problems, prompt_ids)}, round_number)
            self.sink.emit("rollouts", round=round_number, own=sum(len(g.texts) for g in groups),
                           received=len(received), peers=sorted({r.peer_id for r in received}),
                           rejected=dict(self.comms.last_rejected))
            self._check_stop()

            t = time.perf_counter()
            own_rewards = [self._judge_group(g, p) for g, p in zip(groups, problems)]
            other_rewards = [self._judge_group(g, p) for g, p in transplants]
            times["reward"] += time.perf_counter() - t
            if proposed is not None:
                self._send_feedback(round_number, proposed, own_rewards[-1])
            for (group, _), rewards in zip(transplants, other_rewards):
                by_peer.setdefault(group.source, []).extend(rewards)
            flat_own = [r for rs in own_rewards for r in rs]
            all_rewards.extend(flat_own)
            self.sink.emit("rewards", round=round_number, mean=_mean(flat_own), own=flat_own,
                           transplanted=[r for rs in other_rewards for r in rs])
            self._check_stop()

            result = self.trainer.step(groups + [g for g, _ in transplants], own_rewards + other_rewards)
            times["train"] += result.seconds
            loss = result.loss if result.loss is not None else loss
            self.sink.emit("train_step", round=round_number, loss=result.loss, seconds=round(result.seconds, 4),
                           skipped=result.skipped, samples=result.samples)
        self._check_stop()
        t = time.perf_counter()
        self.step += 1
        path = self.checkpoints.save(round_number, self.trainer.model, self.trainer.optimizer, self.model_name,
                                     extra={"step": self.step,
                                            "confirmed": getattr(self.round_source, "confirmed", None)})
        self.sink.emit("checkpoint", round=round_number, path=str(path), seconds=round(time.perf_counter() - t, 4))
        self.last_completed = round_number
        stats = RoundStats(round_number, _mean(all_rewards), loss, times,
                           {peer: _mean(rs) for peer, rs in by_peer.items()}, sum(all_rewards), confirmed)
        self.sink.emit("round_finished", round=round_number, seconds=round(time.perf_counter() - started, 4),
                       reward_mean=stats.reward_mean, **{k: round(v, 4) for k, v in times.items()})
        return stats

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, rounds: int | None = None) -> int:
        """Play ``rounds`` rounds (None: until stopped). Returns how many were completed."""
        done = 0
        try:
            while rounds is None or done < rounds:
                if self.stop.now.is_set() or self.stop.after_round.is_set():
                    break
                try:
                    ticket = self.round_source.next_round(self.last_completed)
                    round_number = ticket.round
                    stats = self.play_round(round_number, ticket.confirmed)
                except (Interrupted, WaitInterrupted):
                    log.info("stop requested after round %s", self.last_completed)
                    break
                done += 1
                for hook in self.after_round:
                    hook(round_number, stats)
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.comms.close()
        return done


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else 0.0
