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
judging), so nothing is re-tokenised. Peers' rollouts arrive as text and are tokenised once.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.utils.checkpoint import checkpoint


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

    @classmethod
    def from_config(cls, training) -> "GRPOSettings":
        return cls(num_generations=training.num_generations, max_new_tokens=training.max_new_tokens,
                   epsilon=training.epsilon, epsilon_high=training.epsilon_high, beta=training.beta,
                   learning_rate=training.learning_rate, temperature=training.temperature,
                   gradient_checkpointing=training.gradient_checkpointing,
                   num_iterations=training.num_iterations, minibatch_size=training.minibatch_size,
                   micro_batch_tokens=training.micro_batch_tokens)


@dataclass
class Group:
    """One prompt and its G completions, as token ids (what is trained on) and text (what is judged)."""

    prompt: str
    prompt_ids: list[int]
    completion_ids: list[list[int]]
    texts: list[str]
    hit_limit: list[bool]
    source: str = "own"  # "own" or the peer id it was transplanted from

    @classmethod
    def from_text(cls, tokenizer, prompt: str, prompt_ids: list[int], texts: Sequence[str],
                  max_new_tokens: int, source: str) -> "Group":
        """A peer's completions: tokenised once, bounded to our own token budget."""
        eos = tokenizer.eos_token_id
        ids, limits = [], []
        for text in texts:
            toks = tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens]
            if len(toks) < max_new_tokens and eos is not None:
                toks = toks + [eos]
            ids.append(toks)
            limits.append(len(toks) >= max_new_tokens)
        return cls(prompt, list(prompt_ids), ids, list(texts), limits, source=source)


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


def group_advantages(rewards: Sequence[float]) -> torch.Tensor:
    """(r - mean) / (std + 1e-8) within one prompt's group (unbiased std, as torch.std)."""
    r = torch.tensor(rewards, dtype=torch.float32)
    if r.numel() < 2:
        return torch.zeros_like(r)
    return (r - r.mean()) / (r.std() + 1e-8)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float, epsilon_high: float, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, clamp: float = 10.0,
              per_token_advantages: bool = False) -> torch.Tensor:
    """Token-mean clipped surrogate loss.

    logps/old_logps/ref_logps/mask: [N, T] over completion tokens; advantages: [N] (or [N, T]
    with ``per_token_advantages``).
    Per token: -min(ratio*A, clip(ratio, 1-eps, 1+eps_high)*A) + beta*KL, clamped to
    [-clamp, clamp], then averaged over every real completion token in the batch.
    """
    ratio = torch.exp(logps - old_logps)
    adv = advantages if per_token_advantages else advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high) * adv
    per_token = -torch.min(unclipped, clipped)
    if beta > 0 and ref_logps is not None:
        # k3 estimator of KL(pi || ref): always >= 0, unbiased
        delta = ref_logps - logps
        per_token = per_token + beta * (torch.exp(delta) - delta - 1)
    per_token = torch.clamp(per_token, -clamp, clamp)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


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
                 should_stop: Callable[[], bool] | None = None) -> list[Group]:
        """Sample G completions for every prompt in a single batched generate call."""
        s = self.settings
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, ids in enumerate(prompt_ids):  # left padding: completions start at the same column
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            attention[i, width - len(ids):] = 1
        from transformers import StoppingCriteriaList

        criteria = StoppingCriteriaList([_StopFlag(should_stop)]) if should_stop else None
        self.model.eval()
        out = self.model.generate(
            input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
            do_sample=True, temperature=s.temperature, top_k=0, top_p=1.0,
            max_new_tokens=s.max_new_tokens, num_return_sequences=s.num_generations,
            pad_token_id=self.pad_id, stopping_criteria=criteria)
        completions = out[:, width:].tolist()
        groups = []
        for i, prompt in enumerate(prompts):
            ids_list, texts, limits = [], [], []
            for row in completions[i * s.num_generations:(i + 1) * s.num_generations]:
                cut = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
                ids = row[:cut + 1] if cut is not None else row
                ids_list.append(ids)
                limits.append(cut is None)
                texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
            groups.append(Group(prompt, list(prompt_ids[i]), ids_list, texts, limits))
        return groups

    # ---- training ---------------------------------------------------------------------------
    def _micro_batches(self, rows: list[tuple]) -> list[list[tuple]]:
        """Consecutive rows packed while (rows x longest) stays within micro_batch_tokens."""
        out, current, longest = [], [], 0
        for row in rows:
            length = len(row[0]) + max(len(row[1]), 1)
            if current and (len(current) + 1) * max(longest, length) > self.settings.micro_batch_tokens:
                out.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, length)
        if current:
            out.append(current)
        return out

    def _pack(self, rows: Sequence[tuple]):
        """Right-padded [N, L] ids and attention, and a mask of completion-token targets [N, L-1]."""
        length = max(len(p) + max(len(c), 1) for p, c, *_ in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        targets = torch.zeros_like(ids)
        for i, (p, c, *_) in enumerate(rows):
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

    def step(self, groups: Sequence[Group], rewards: Sequence[Sequence[float]]) -> StepResult:
        """GRPO over all groups (see the module docstring); skipped when no group has differing rewards."""
        start = time.perf_counter()
        s = self.settings
        samples = sum(len(g.completion_ids) for g in groups)
        if not groups:
            return StepResult(None, True, time.perf_counter() - start, 0)
        advantages = [float(a) for r in rewards for a in group_advantages(r)]
        if not any(advantages):
            return StepResult(None, True, time.perf_counter() - start, samples)
        rows = [(g.prompt_ids, c, adv) for g, c, adv in
                zip([g for g in groups for _ in g.completion_ids], [c for g in groups for c in g.completion_ids],
                    advantages)]
        size = s.minibatch_size or len(rows)
        minibatches = [rows[i:i + size] for i in range(0, len(rows), size)]
        plans = [self._micro_batches(mb) for mb in minibatches]
        on_policy = s.num_iterations == 1 and len(minibatches) == 1
        self.model.train()
        old = {} if on_policy else self._logps_no_grad(self.model, plans)
        ref = self._logps_no_grad(self.ref_model, plans) if self.ref_model is not None else {}
        result = StepResult(None, False, 0.0, samples)
        losses, low, high = [], 1.0, 1.0
        for _ in range(max(1, s.num_iterations)):
            for m, plan in enumerate(plans):
                tokens = sum(len(r[1]) for r in minibatches[m])
                self.optimizer.zero_grad(set_to_none=True)
                total = 0.0
                for k, micro in enumerate(plan):
                    ids, attention, mask = self._pack(micro)
                    logps = self.token_logps(self.model, ids, attention, mask)
                    old_logps = old[(m, k)] if (m, k) in old else logps.detach()
                    adv = torch.tensor([r[2] for r in micro], device=self.device)
                    adv_tok = adv.repeat_interleave(mask.sum(1))
                    ratio = torch.exp(logps.detach() - old_logps)
                    low, high = min(low, float(ratio.min())), max(high, float(ratio.max()))
                    result.clipped += int(_clipped(ratio, adv_tok, s.epsilon, s.epsilon_high).sum())
                    loss = grpo_loss(logps.unsqueeze(0), old_logps.unsqueeze(0), adv_tok.unsqueeze(0),
                                     torch.ones_like(logps).unsqueeze(0), epsilon=s.epsilon,
                                     epsilon_high=s.epsilon_high, beta=s.beta,
                                     ref_logps=ref[(m, k)].unsqueeze(0) if (m, k) in ref else None,
                                     clamp=s.loss_clamp, per_token_advantages=True)
                    # the micro-batch's share of the minibatch's token mean
                    scaled = loss * (logps.numel() / max(1, tokens))
                    scaled.backward()
                    total += float(scaled.detach())
                    result.micro_batches += 1
                    result.max_micro_tokens = max(result.max_micro_tokens, ids.numel())
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
                self.optimizer.step()
                result.optimizer_steps += 1
                losses.append(total)
        result.loss = sum(losses) / len(losses)
        result.tokens = sum(len(r[1]) for r in rows)
        result.ratio_range = (low, high)
        result.seconds = time.perf_counter() - start
        return result

    @torch.no_grad()
    def _logps_no_grad(self, model, plans) -> dict[tuple[int, int], torch.Tensor]:
        out = {}
        for m, plan in enumerate(plans):
            for k, micro in enumerate(plan):
                out[(m, k)] = self.token_logps(model, *self._pack(micro))
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
