"""GRPO: group-relative policy optimisation on sampled completions.

One round = sample G completions for every prompt in ONE batched ``generate`` call, score them,
normalise rewards within each prompt's group, then optimise the clipped surrogate:

* the samples are split into ``minibatch_size`` minibatches, one optimiser step each, for
  ``num_iterations`` epochs (PPO-style); every minibatch is cut further into micro-batches of at
  most ``micro_batch_tokens`` padded tokens whose gradients accumulate, so a step's memory is
  bounded by the micro-batch, not by P x G;
* the sampling policy's log-probs ("old") come from one no-grad pass before the first step; the
  ratio new/old then differs from 1 from the second optimiser step on, and the asymmetric clip
  (epsilon / epsilon_high) acts. With one minibatch and one epoch (the default) there is a single
  on-policy step: old equals new, the ratio is 1, the clip never binds, and the loss is the
  advantage-weighted token log-likelihood (REINFORCE with group baselines), token-mean;
* log-probs of the sampled tokens are taken from the final hidden states at completion positions
  only, ``logit_chunk`` positions at a time, as logsumexp + gather with each chunk recomputed in
  the backward pass: the full-vocabulary log-softmax over every position is never held.

The token ids that ``generate`` produced are trained on directly (decoded text is only for
judging), so nothing is re-tokenised. Peers' rollouts arrive with the publisher's token ids and
log-probs when it runs the same model (trained on as they are), else as text, tokenised once.
Other peers' completions are another policy's samples: ``desktop.node.offpolicy`` decides which
of them a step learns from and how much they weigh (``training.external_samples``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, fields
from typing import Callable, Sequence

import torch
from torch.utils.checkpoint import checkpoint
from transformers import StoppingCriteriaList

from desktop.node import offpolicy
from desktop.node.offpolicy import Row


@dataclass
class GRPOSettings:
    num_generations: int = 2
    max_new_tokens: int = 256
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    beta: float = 0.0
    learning_rate: float = 1e-6
    temperature: float = 1.0
    loss_clamp: float = 10.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    num_iterations: int = 1                 # epochs over the round's samples
    minibatch_size: int | None = None       # samples per optimiser step (None: all of them)
    micro_batch_tokens: int = 4096          # padded tokens per forward/backward pass
    logit_chunk: int = 512                  # completion positions per vocabulary projection
    external_samples: str = "positive"      # offpolicy.MODES: how other peers' completions are learned from

    @classmethod
    def from_config(cls, training) -> "GRPOSettings":
        """The settings ``config.training`` has (same names); the trainer's own knobs keep their defaults."""
        known = training.model_dump() if hasattr(training, "model_dump") else vars(training)
        return cls(**{f.name: known[f.name] for f in fields(cls) if f.name in known})


@dataclass
class Group:
    """One prompt and its G completions, as token ids (what is trained on) and text (what is judged)."""

    prompt: str
    prompt_ids: list[int]
    completion_ids: list[list[int]]
    texts: list[str]
    hit_limit: list[bool]
    source: str = "own"  # "own" or the peer id it was transplanted from
    # per completion, per token: the log-probs of the policy that sampled them (own: ours, from
    # ``GRPOTrainer.sampled_logps``; external: the publisher's, when its record carried them)
    logps: list[list[float]] | None = None

    @property
    def external(self) -> bool:
        return self.source != "own"

    @classmethod
    def from_text(cls, tokenizer, prompt: str, prompt_ids: list[int], texts: Sequence[str],
                  max_new_tokens: int, source: str, stopped: Sequence[bool] | None = None) -> "Group":
        """A peer's completions as text: tokenised once, bounded to our own token budget.
        ``stopped`` (the publisher's word, per completion) says which ended on their own: a
        completion cut at the publisher's token limit may re-tokenise shorter, and must not be
        taken for one that stopped (no end token is added to it)."""
        eos = tokenizer.eos_token_id
        ids, limits = [], []
        for k, text in enumerate(texts):
            toks = tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens]
            ended = stopped[k] if stopped is not None else len(toks) < max_new_tokens
            if ended and len(toks) < max_new_tokens and eos is not None:
                toks = toks + [eos]
            ids.append(toks)
            limits.append(not ended or len(toks) >= max_new_tokens)
        return cls(prompt, list(prompt_ids), ids, list(texts), limits, source=source)

    @classmethod
    def from_tokens(cls, prompt: str, prompt_ids: list[int], texts: Sequence[str], token_ids: Sequence[list[int]],
                    logps: Sequence[list[float]], max_new_tokens: int, eos_ids: set[int], source: str) -> "Group":
        """A peer's completions as the token ids its model sampled (the same model as ours), with
        its log-probs: trained on as they are, nothing re-tokenised. Cut to our token budget."""
        ids = [list(t[:max_new_tokens]) for t in token_ids]
        limits = [not (t and t[-1] in eos_ids) for t in ids]
        return cls(prompt, list(prompt_ids), ids, list(texts), limits, source=source,
                   logps=[list(lp[:len(t)]) for lp, t in zip(logps, ids)])


@dataclass
class StepResult:
    loss: float | None  # mean over the optimiser steps taken
    skipped: bool
    seconds: float
    samples: int
    optimizer_steps: int = 0
    micro_batches: int = 0
    clipped: int = 0               # completion tokens where the clip bound the objective
    tokens: int = 0                # completion tokens trained on, per epoch
    max_micro_tokens: int = 0      # the largest micro-batch, in padded tokens
    ratio_range: tuple[float, float] = (1.0, 1.0)  # min and max new/old ratio seen
    # the policy's health, before the step: mean log-prob per token of its own sampled tokens (a
    # falling value is a policy spreading out: entropy rising) and of the external tokens it
    # trained on; the external tokens' share of the step's weight; external completions left out
    own_logp: float | None = None
    external_logp: float | None = None
    external_share: float = 0.0
    external_dropped: int = 0


def group_advantages(rewards: Sequence[float]) -> torch.Tensor:
    """(r - mean) / (std + 1e-8) within one prompt's group (unbiased std, as torch.std)."""
    r = torch.tensor(rewards, dtype=torch.float32)
    if r.numel() < 2:
        return torch.zeros_like(r)
    return (r - r.mean()) / (r.std() + 1e-8)


def token_objective(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, *, epsilon: float,
                    epsilon_high: float, beta: float = 0.0, ref_logps: torch.Tensor | None = None,
                    clamp: float = 10.0) -> torch.Tensor:
    """Per token (same shapes in, same shape out): -min(ratio*A, clip(ratio, 1-eps, 1+eps_high)*A)
    + beta*KL, clamped to [-clamp, clamp]. ``advantages`` already per token."""
    ratio = torch.exp(logps - old_logps)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high) * advantages
    per_token = -torch.min(unclipped, clipped)
    if beta > 0 and ref_logps is not None:
        # k3 estimator of KL(pi || ref): always >= 0, unbiased
        delta = ref_logps - logps
        per_token = per_token + beta * (torch.exp(delta) - delta - 1)
    return torch.clamp(per_token, -clamp, clamp)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float, epsilon_high: float, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, clamp: float = 10.0,
              per_token_advantages: bool = False) -> torch.Tensor:
    """Token-mean clipped surrogate loss.

    logps/old_logps/ref_logps/mask: [N, T] over completion tokens; advantages: [N] (or [N, T]
    with ``per_token_advantages``). ``token_objective`` per token, averaged over every real
    completion token in the batch.
    """
    adv = advantages if per_token_advantages else advantages.unsqueeze(1)
    per_token = token_objective(logps, old_logps, adv.expand_as(logps), epsilon=epsilon, epsilon_high=epsilon_high,
                                beta=beta, ref_logps=ref_logps, clamp=clamp)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


class _Health:
    """Sums, over a step's first pass, of the log-probs of own and external tokens and of the
    external tokens' weight."""

    def __init__(self) -> None:
        self.own = self.own_n = self.ext = self.ext_n = 0.0
        self.ext_weight = 0.0

    def add(self, rows: Sequence[Row], logps: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor) -> None:
        external = torch.tensor([r.external for r in rows], device=logps.device).repeat_interleave(counts)
        self.own += float(logps[~external].sum())
        self.own_n += int((~external).sum())
        self.ext += float(logps[external].sum())
        self.ext_n += int(external.sum())
        self.ext_weight += float(weights[external].sum())

    def summary(self, minibatches: int) -> tuple[float | None, float | None, float]:
        own = round(self.own / self.own_n, 4) if self.own_n else None
        ext = round(self.ext / self.ext_n, 4) if self.ext_n else None
        return own, ext, round(self.ext_weight / max(1, minibatches), 4)


class _StopFlag:
    """A generate() stopping criterion that ends sampling early when the node is asked to stop."""

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), bool(self.should_stop()), dtype=torch.bool,
                          device=input_ids.device)


class GRPOTrainer:
    def __init__(self, model, tokenizer, settings: GRPOSettings, device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = torch.device(device)
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
        self.ref_model = None
        if settings.beta > 0:
            self.ref_model = copy.deepcopy(model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        if settings.gradient_checkpointing:  # trades compute for memory on big models
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos if eos is not None else tokenizer.eos_token_id])

    # ---- prompts and generation -------------------------------------------------------------
    def encode_prompt(self, messages: list[dict]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], prompt_ids: Sequence[list[int]],
                 should_stop: Callable[[], bool] | None = None, greedy: bool = False) -> list[Group]:
        """Sample G completions for every prompt in a single batched generate call (``greedy``:
        one, the most likely, per prompt)."""
        s = self.settings
        per_prompt = 1 if greedy else s.num_generations
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, ids in enumerate(prompt_ids):  # left padding: completions start at the same column
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            attention[i, width - len(ids):] = 1

        criteria = StoppingCriteriaList([_StopFlag(should_stop)]) if should_stop else None
        self.model.eval()
        sampling = {} if greedy else {"temperature": s.temperature, "top_k": 0, "top_p": 1.0}
        out = self.model.generate(
            input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
            do_sample=not greedy, **sampling,
            max_new_tokens=s.max_new_tokens, num_return_sequences=per_prompt,
            pad_token_id=self.pad_id, stopping_criteria=criteria)
        completions = out[:, width:].tolist()
        groups = []
        for i, prompt in enumerate(prompts):
            ids_list, texts, limits = [], [], []
            for row in completions[i * per_prompt:(i + 1) * per_prompt]:
                cut = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
                ids = row[:cut + 1] if cut is not None else row
                ids_list.append(ids)
                limits.append(cut is None)
                texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
            groups.append(Group(prompt, list(prompt_ids[i]), ids_list, texts, limits))
        return groups

    # ---- training ---------------------------------------------------------------------------
    def _micro_batches(self, rows: list[tuple[Row, float]]) -> list[list[tuple[Row, float]]]:
        """Consecutive (row, weight) pairs packed while (rows x longest) stays within micro_batch_tokens."""
        out, current, longest = [], [], 0
        for row in rows:
            length = len(row[0].prompt_ids) + max(len(row[0].completion_ids), 1)
            if current and (len(current) + 1) * max(longest, length) > self.settings.micro_batch_tokens:
                out.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, length)
        if current:
            out.append(current)
        return out

    def _pack(self, rows: Sequence[Row]):
        """Right-padded [N, L] ids and attention, and a mask of completion-token targets [N, L-1]."""
        length = max(len(r.prompt_ids) + max(len(r.completion_ids), 1) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        targets = torch.zeros_like(ids)
        for i, (p, c) in enumerate((r.prompt_ids, r.completion_ids) for r in rows):
            seq = p + c
            ids[i, :len(seq)] = torch.tensor(seq)
            attention[i, :len(seq)] = 1
            targets[i, len(p):len(seq)] = 1
        return ids.to(self.device), attention.to(self.device), targets[:, 1:].bool().to(self.device)

    def token_logps(self, model, ids, attention, mask) -> torch.Tensor:
        """Log-probs of the sampled tokens at the ``mask`` positions, flat [n_tokens]."""
        hidden = model.base_model(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
        hidden = hidden[:, :-1][mask]
        targets = ids[:, 1:][mask]
        head = model.get_output_embeddings()
        weight, bias = head.weight, getattr(head, "bias", None)
        softcap = getattr(model.config, "final_logit_softcapping", None)
        chunk = max(1, self.settings.logit_chunk)
        pieces = []
        for start in range(0, hidden.shape[0], chunk):
            h, t = hidden[start:start + chunk], targets[start:start + chunk]
            if torch.is_grad_enabled() and h.requires_grad:
                # recomputed in backward: a chunk's logits live only while it is being worked on
                pieces.append(checkpoint(_selected_logps, h, t, weight, bias, self.settings.temperature, softcap,
                                         use_reentrant=False))
            else:
                pieces.append(_selected_logps(h, t, weight, bias, self.settings.temperature, softcap))
        return torch.cat(pieces) if pieces else hidden.new_zeros(0)

    def step(self, groups: Sequence[Group], rewards: Sequence[Sequence[float]],
             share_cap: float | None = None) -> StepResult:
        """GRPO over all groups (see the module docstring); skipped when no group has differing
        rewards. External groups are weighed by ``offpolicy`` (their tokens at most ``share_cap``
        of each optimiser step's weight)."""
        start = time.perf_counter()
        s = self.settings
        samples = sum(len(g.completion_ids) for g in groups)
        if not groups:
            return StepResult(None, True, time.perf_counter() - start, 0)
        every = [Row(g.prompt_ids, c, float(a), g.external, g.logps[k] if g.external and g.logps else None)
                 for g, r in zip(groups, rewards) for k, (c, a) in enumerate(zip(g.completion_ids, group_advantages(r)))]
        rows = [r for r in every if offpolicy.keep(r, s.external_samples)]
        result = StepResult(None, False, 0.0, samples, external_dropped=len(every) - len(rows))
        if not any(r.advantage for r in rows):
            return StepResult(None, True, time.perf_counter() - start, samples, external_dropped=result.external_dropped)
        size = s.minibatch_size or len(rows)
        minibatches = [rows[i:i + size] for i in range(0, len(rows), size)]
        weights = [offpolicy.token_weights(mb, share_cap) for mb in minibatches]
        plans = [self._micro_batches(list(zip(mb, w))) for mb, w in zip(minibatches, weights)]
        on_policy = s.num_iterations == 1 and len(minibatches) == 1
        self.model.train()
        old = {} if on_policy else self._logps_no_grad(self.model, plans)
        ref = self._logps_no_grad(self.ref_model, plans) if self.ref_model is not None else {}
        health = _Health()
        losses, low, high = [], 1.0, 1.0
        for epoch in range(max(1, s.num_iterations)):
            for m, plan in enumerate(plans):
                self.optimizer.zero_grad(set_to_none=True)
                total = 0.0
                for k, micro in enumerate(plan):
                    ids, attention, mask = self._pack([row for row, _ in micro])
                    logps = self.token_logps(self.model, ids, attention, mask)
                    old_logps = old[(m, k)] if (m, k) in old else logps.detach()
                    counts = mask.sum(1)
                    adv_tok = torch.tensor([row.advantage for row, _ in micro], device=self.device).repeat_interleave(counts)
                    weight_tok = torch.tensor([w for _, w in micro], device=self.device).repeat_interleave(counts)
                    coef = self._importance([row for row, _ in micro], old_logps, counts)
                    if epoch == 0:
                        health.add([row for row, _ in micro], old_logps, counts, weight_tok)
                    ratio = torch.exp(logps.detach() - old_logps)
                    low, high = min(low, float(ratio.min())), max(high, float(ratio.max()))
                    result.clipped += int(_clipped(ratio, adv_tok, s.epsilon, s.epsilon_high).sum())
                    per_token = token_objective(logps, old_logps, adv_tok, epsilon=s.epsilon, epsilon_high=s.epsilon_high,
                                                beta=s.beta, ref_logps=ref.get((m, k)), clamp=s.loss_clamp)
                    # each token's share of the minibatch's weighted mean (a plain token mean
                    # without external rows); external tokens also carry their importance weight
                    scaled = (per_token * coef * weight_tok).sum()
                    scaled.backward()
                    total += float(scaled.detach())
                    result.micro_batches += 1
                    result.max_micro_tokens = max(result.max_micro_tokens, ids.numel())
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
                self.optimizer.step()
                result.optimizer_steps += 1
                losses.append(total)
        result.loss = sum(losses) / len(losses)
        result.tokens = sum(len(r.completion_ids) for r in rows)
        result.ratio_range = (low, high)
        result.own_logp, result.external_logp, result.external_share = health.summary(len(minibatches))
        result.seconds = time.perf_counter() - start
        return result

    def _importance(self, rows: Sequence[Row], old_logps: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Per token: 1, or for an external token under a behaviour mode the truncated ratio of our
        probability to the publisher's."""
        coef = torch.ones_like(old_logps)
        if not offpolicy.uses_behaviour(self.settings.external_samples):
            return coef
        at = 0
        for row, n in zip(rows, counts.tolist()):
            if row.external and row.behaviour is not None and len(row.behaviour) == n:
                mu = torch.tensor(row.behaviour, dtype=old_logps.dtype, device=old_logps.device)
                coef[at:at + n] = offpolicy.importance(old_logps[at:at + n].detach(), mu)
            at += n
        return coef

    @torch.no_grad()
    def sampled_logps(self, groups: Sequence[Group]) -> None:
        """Fill each own group's ``logps``: our per-token log-probs of what we just sampled (what a
        peer that trains on our completions weighs them by). One no-grad pass over the completions."""
        rows = [Row(g.prompt_ids, c, 0.0) for g in groups for c in g.completion_ids]
        flat = []
        for micro in self._micro_batches([(r, 0.0) for r in rows]):
            ids, attention, mask = self._pack([r for r, _ in micro])
            values = self.token_logps(self.model, ids, attention, mask).float().tolist()
            at = 0
            for n in mask.sum(1).tolist():
                flat.append(values[at:at + n])
                at += n
        it = iter(flat)
        for g in groups:
            g.logps = [next(it) for _ in g.completion_ids]

    @torch.no_grad()
    def _logps_no_grad(self, model, plans) -> dict[tuple[int, int], torch.Tensor]:
        out = {}
        for m, plan in enumerate(plans):
            for k, micro in enumerate(plan):
                out[(m, k)] = self.token_logps(model, *self._pack([row for row, _ in micro]))
        return out


def _selected_logps(hidden, targets, weight, bias, temperature: float, softcap) -> torch.Tensor:
    logits = torch.nn.functional.linear(hidden, weight, bias).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    logits = logits / temperature
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=1)


def _clipped(ratio: torch.Tensor, adv: torch.Tensor, epsilon: float, epsilon_high: float) -> torch.Tensor:
    """Tokens where the clipped term is the smaller one, i.e. the clip holds the update back."""
    return ((adv > 0) & (ratio > 1 + epsilon_high)) | ((adv < 0) & (ratio < 1 - epsilon))
