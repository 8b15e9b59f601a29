"""The game loop of one peer, SAPO-style: own problems -> generate -> judge -> share -> take what
peers shared -> train -> checkpoint -> events.

Reads like the round it plays. Everything heavy (trainer, judge, swarm, chain) is built by
``desktop.node.main`` and handed in, so tests and benchmarks put the same loop together from
other parts. What to train on is ``desktop.node.sapo``'s choice: I own groups and J external
groups, those with reward spread only.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from desktop.codezero.judges import Judge
from desktop.codezero.problems import Problem, ProblemSource
from desktop.codezero.refs import ProblemResolver
from desktop.codezero.rewards import codezero_reward
from desktop.events import EventSink
from desktop.node.checkpoint import CheckpointStore
from desktop.node.comms import Communication, SinglePeer
from desktop.node.difficulty import DifficultyTuner
from desktop.node.grpo import GRPOTrainer, Group
from desktop.node.health import PolicyWatch
from desktop.node.pause import RoundAbandoned
from desktop.node.rounds import LocalRoundSource, RoundSource, WaitInterrupted
from desktop.node.sapo import choose_external, has_spread
from desktop.node.skill import SkillCheck
from desktop.node.stop import StopControl
from desktop.swarm.problems_exchange import SolverChannel
from desktop.swarm.records import make_item

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Solve the user's task. Answer with the complete "
    "solution in a single ```python code block, then stop."
)


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
    # peer_rewards: peer id -> mean reward of its rollouts, judged here


@dataclass
class Game:
    """What this peer's rounds are made of."""

    problems: ProblemSource                 # this peer's own stream
    judge: Judge
    stages: int = 1
    local_groups: int = 1                   # SAPO's I: own problems a round
    external_groups: int = 2                # SAPO's J: other peers' groups trained on a round
    resolver: ProblemResolver | None = None  # rebuilds other peers' problems from their references
    difficulty: DifficultyTuner | None = None  # this peer's own level of generated problems, or None
    held_out: Sequence[Problem] = ()        # the skill check's problems (never trained on)
    skill_every: int = 0                    # rounds between skill checks (0: never)


@dataclass
class Peers:
    """Who this peer plays with (None: nobody; its own round count)."""

    comms: Communication | None = None
    round_source: RoundSource | None = None
    proposals: SolverChannel | None = None  # proposer problems in, reward feedback out

    def __post_init__(self) -> None:
        self.comms = self.comms or SinglePeer()
        self.round_source = self.round_source or LocalRoundSource()


class Node:
    def __init__(self, *, trainer: GRPOTrainer, model_name: str, game: Game, sink: EventSink,
                 checkpoints: CheckpointStore, peers: Peers | None = None, stop: StopControl | None = None,
                 after_round=(), workers: int = 2, rng_seed: str = "", gate=None) -> None:
        self.trainer = trainer
        self.model_name = model_name
        self.game = game
        self.peers = peers or Peers()
        if game.resolver is None:
            game.resolver = ProblemResolver(proposer_lookup=getattr(self.peers.proposals, "lookup", None))
        self.sink = sink
        self.checkpoints = checkpoints
        self.stop = stop or StopControl()
        self.after_round = [hook for hook in after_round if hook]  # hook(round, stats): chain, hub
        self.judges = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="judge")
        # J / (I + J): the most of a step's weight other peers' tokens may take
        self.external_share = game.external_groups / max(1, game.local_groups + game.external_groups)
        self.policy = PolicyWatch(sink)
        self.rng_seed = rng_seed  # the node's own stream (training seed + peer id)
        self.gate = gate  # node.pause.PauseGate: where the loop waits while paused (None: never)
        self.skill = (SkillCheck(trainer, game.held_out, game.skill_every, self.messages, self._judge_texts)
                      if game.held_out else None)
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
        if "confirmed" in resumed.extra and hasattr(self.peers.round_source, "confirmed"):
            self.peers.round_source.confirmed = resumed.extra["confirmed"]
        if self.game.difficulty is not None:
            self.game.difficulty.restore(resumed.extra.get("difficulty"))
        log.info("resumed from %s (round %d)", resumed.path, resumed.round)
        return resumed.round

    # ---- one round -----------------------------------------------------------------------------
    def _check_stop(self) -> None:
        if self.stop.now.is_set():
            raise Interrupted()

    def _safe_point(self, round_number: int) -> bool:
        """Wait here while paused; True when asked to stop (generate's stopping criterion)."""
        if self.gate is not None:
            self.gate.wait(round_number, at="step")
        return self.stop.now.is_set()

    def _judge_texts(self, texts, limits, problem: Problem) -> list[float]:
        jobs = [self.judges.submit(codezero_reward, text, problem, self.game.judge, hit_token_limit=limit)
                for text, limit in zip(texts, limits)]
        return [float(job.result()) for job in jobs]

    def _proposer_problem(self, round_number: int) -> Problem | None:
        """One problem from a proposer on the DHT per round, when there is one."""
        if self.peers.proposals is None:
            return None
        try:
            return self.peers.proposals.fetch_problem(round_number)
        except Exception as exc:  # a peer's problem is a bonus, never a reason to stop
            log.warning("could not fetch a proposer problem: %s", exc)
            return None

    def _send_feedback(self, round_number: int, problem: Problem, rewards: list[float]) -> None:
        try:
            self.peers.proposals.publish_feedback(round_number, problem, rewards)
        except Exception as exc:
            log.warning("could not send feedback to the proposer: %s", exc)

    @staticmethod
    def messages(problem: Problem) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem.question}]

    def _own_problems(self, stage: int) -> list[Problem]:
        base = (self.step * self.game.stages + stage) * self.game.local_groups
        level = self.game.difficulty.level if self.game.difficulty is not None else None
        return [self.game.problems.next(base + k, level=level) for k in range(self.game.local_groups)]

    def _same_tokens(self, rollouts) -> bool:
        """Whether a peer's token ids can be trained on as they are: the same model as ours, one
        list per completion, every id in our vocabulary, and decoding to the text it sent (what is
        judged is what is trained on)."""
        tok = self.trainer.tokenizer
        if rollouts.model != self.model_name or len(rollouts.tokens) != len(rollouts.completions):
            return False
        vocab = len(tok)
        return all(all(0 <= t < vocab for t in ids) and tok.decode(ids, skip_special_tokens=True) == text
                   for ids, text in zip(rollouts.tokens, rollouts.completions))

    def _external_group(self, rollouts, problem: Problem) -> Group:
        """A peer's group as we train on it: its own tokens and log-probs where they can be used,
        else its text, tokenised here (its ``stopped`` flags decide where an end token goes)."""
        s = self.trainer.settings
        prompt_ids = self.trainer.encode_prompt(self.messages(problem))
        if self._same_tokens(rollouts):
            return Group.from_tokens(problem.question, prompt_ids, rollouts.completions, rollouts.tokens,
                                     rollouts.logps, s.max_new_tokens, self.trainer.eos_ids, source=rollouts.peer_id)
        stopped = rollouts.stopped if len(rollouts.stopped) == len(rollouts.completions) else None
        return Group.from_text(self.trainer.tokenizer, problem.question, prompt_ids, rollouts.completions,
                               s.max_new_tokens, source=rollouts.peer_id, stopped=stopped)

    def _external(self, received, round_number: int, refused: Counter):
        """Up to J peers' groups with spread, rebuilt from their references and judged here:
        (chosen, judged, the chosen ones as groups to train on)."""
        built: dict[int, Group] = {}

        def judge(rollouts, problem: Problem) -> list[float]:
            group = built[id(rollouts)] = self._external_group(rollouts, problem)
            return self._judge_texts(rollouts.completions, group.hit_limit, problem)

        rng = random.Random(f"external:{self.rng_seed}:{round_number}:{self.step}")
        chosen, judged = choose_external(received, self.game.external_groups, resolve=self.game.resolver.resolve,
                                         judge=judge, rng=rng, refused=refused)
        return chosen, judged, [(built[id(ext.rollouts)], ext.rewards) for ext in chosen]

    def _check_skill(self, round_number: int) -> None:
        """Skill on the held-out problems when it is due (before this round's training)."""
        if self.skill is None or not self.skill.due(self.step):
            return
        self._safe_point(round_number)
        self._check_stop()
        result = self.skill.run(should_stop=lambda: self._safe_point(round_number))
        self._check_stop()
        self.sink.emit("skill", round=round_number, **result)

    def play_round(self, round_number: int, confirmed: bool = False) -> RoundStats:
        times = {"generate_s": 0.0, "judge_s": 0.0, "train_s": 0.0, "comm_s": 0.0}
        self._check_skill(round_number)
        started = time.perf_counter()
        all_rewards: list[float] = []
        by_peer: dict[str, list[float]] = {}
        loss = None
        for stage in range(self.game.stages):
            problems = self._own_problems(stage)
            proposed = self._proposer_problem(round_number)
            if proposed is not None:
                problems.append(proposed)
            self.sink.emit("round_started", round=round_number, stage=stage, problems=len(problems),
                           confirmed=confirmed)
            self._safe_point(round_number)
            self._check_stop()

            t = time.perf_counter()
            prompt_ids = [self.trainer.encode_prompt(self.messages(p)) for p in problems]
            groups = self.trainer.generate([p.question for p in problems], prompt_ids,
                                           should_stop=lambda: self._safe_point(round_number))
            times["generate_s"] += time.perf_counter() - t
            self._check_stop()

            t = time.perf_counter()
            own_rewards = [self._judge_texts(g.texts, g.hit_limit, p) for g, p in zip(groups, problems)]
            times["judge_s"] += time.perf_counter() - t
            if proposed is not None:
                self._send_feedback(round_number, proposed, own_rewards[-1])
            if self.game.difficulty is not None:  # the pass rate on our own stream's problems
                mine = [r for p, rs in zip(problems, own_rewards) if p is not proposed for r in rs]
                self.game.difficulty.record(sum(r > 0.5 for r in mine) / max(1, len(mine)))
            self._check_stop()

            t = time.perf_counter()
            if self.peers.comms.shares:  # what a peer weighs our completions by: our log-probs of them
                self.trainer.sampled_logps(groups)
            self.peers.comms.publish(round_number, stage, [
                make_item(p.ref, p.question, g.texts, r, stopped=[not h for h in g.hit_limit], tokens=g.completion_ids,
                          logps=g.logps) for p, g, r in zip(problems, groups, own_rewards) if p.ref is not None])
            gathered = self.peers.comms.gather(round_number, stage)
            received = gathered.rollouts
            times["comm_s"] += time.perf_counter() - t
            self._check_stop()

            t = time.perf_counter()
            refused: Counter = Counter()
            chosen, judged, external = self._external(received, round_number, refused)
            times["judge_s"] += time.perf_counter() - t
            for ext in judged:
                by_peer.setdefault(ext.rollouts.peer_id, []).extend(ext.rewards)
            self.sink.emit("rollouts", round=round_number, own=sum(len(g.texts) for g in groups),
                           received=len(received), peers=sorted({r.peer_id for r in received}),
                           rejected=dict(Counter(gathered.rejected) + refused),
                           transplanted=len(chosen), judged=len(judged),
                           own_problems=[p.id for p in problems],
                           external_problems=[[ext.rollouts.peer_id, ext.problem.id] for ext in chosen])
            flat_own = [r for rs in own_rewards for r in rs]
            all_rewards.extend(flat_own)
            self.sink.emit("rewards", round=round_number, mean=_mean(flat_own), own=flat_own,
                           transplanted=[r for _, rs in external for r in rs])
            self._check_stop()

            train = [(g, r) for g, r in zip(groups, own_rewards) if has_spread(r)] + external
            self._safe_point(round_number)
            self._check_stop()
            result = self.trainer.step([g for g, _ in train], [r for _, r in train], share_cap=self.external_share)
            times["train_s"] += result.seconds
            loss = result.loss if result.loss is not None else loss
            self.sink.emit("train_step", round=round_number, loss=result.loss, seconds=round(result.seconds, 4),
                           skipped=result.skipped, samples=result.samples,
                           groups={"own": len(train) - len(external), "external": len(external)},
                           own_logp=result.own_logp, external_logp=result.external_logp,
                           external_share=result.external_share, external_dropped=result.external_dropped,
                           tokens=result.tokens, optimizer_steps=result.optimizer_steps)
            self.policy.observe(round_number, result.own_logp)
        self._check_stop()
        t = time.perf_counter()
        self.step += 1
        path = self.checkpoints.save(round_number, self.trainer.model, self.trainer.optimizer, self.model_name,
                                     extra={"step": self.step,
                                            "confirmed": getattr(self.peers.round_source, "confirmed", None),
                                            "difficulty": self.game.difficulty.state() if self.game.difficulty else None})
        self.sink.emit("checkpoint", round=round_number, path=str(path), seconds=round(time.perf_counter() - t, 4))
        self.last_completed = round_number
        stats = RoundStats(round_number, _mean(all_rewards), loss, times,
                           {peer: _mean(rs) for peer, rs in by_peer.items()}, sum(all_rewards), confirmed)
        self.sink.emit("round_finished", round=round_number, seconds=round(time.perf_counter() - started, 4),
                       reward_mean=stats.reward_mean, level=self.game.difficulty.level if self.game.difficulty else None,
                       **{k: round(v, 4) for k, v in times.items()})
        return stats

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, rounds: int | None = None) -> int:
        """Play ``rounds`` rounds (None: until stopped). Returns how many were completed."""
        done = 0
        try:
            while rounds is None or done < rounds:
                if self.stop.now.is_set() or self.stop.after_round.is_set():
                    break
                if self.gate is not None:  # paused between rounds: the next round is chosen after
                    self.gate.wait(0 if self.last_completed is None else self.last_completed + 1, at="round")
                    if self.stop.now.is_set():
                        log.info("stop requested while paused after round %s", self.last_completed)
                        break
                round_number = None
                try:
                    ticket = self.peers.round_source.next_round(self.last_completed)
                    round_number = ticket.round
                    stats = self.play_round(round_number, ticket.confirmed)
                except (Interrupted, WaitInterrupted):
                    log.info("stop requested after round %s", self.last_completed)
                    break
                except RoundAbandoned as exc:  # nothing of it is kept: no checkpoint, no submission
                    log.warning("round %s abandoned: %s", round_number, exc)
                    self.sink.emit("warning", message=f"round {round_number} abandoned: {exc}")
                    continue
                done += 1
                for hook in self.after_round:
                    hook(round_number, stats)
        finally:
            self.judges.shutdown(wait=False, cancel_futures=True)
            self.peers.comms.close()
        return done


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else 0.0
