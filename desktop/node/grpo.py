"""GRPO: group-relative policy optimisation on sampled completions.

One round = sample G completions for every prompt in ONE batched ``generate`` call, score them,
normalise rewards within each prompt's group, and take one clipped policy-gradient step. The
token ids that ``generate`` produced are trained on directly (decoded text is only for judging),
so nothing is re-tokenised. Peers' rollouts arrive as text and are tokenised once on arrival.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F


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

    @classmethod
    def from_config(cls, training) -> "GRPOSettings":
        return cls(num_generations=training.num_generations, max_new_tokens=training.max_new_tokens,
                   epsilon=training.epsilon, epsilon_high=training.epsilon_high, beta=training.beta,
                   learning_rate=training.learning_rate, temperature=training.temperature,
                   gradient_checkpointing=training.gradient_checkpointing)


@dataclass
class Group:
    """One prompt and its G completions, as token ids (what is trained on) and text (what is judged)."""

    prompt: str
    prompt_ids: list[int]
    completion_ids: list[list[int]]
    texts: list[str]
    hit_limit: list[bool]
    source: str = "own"  # "own" or the peer id it was transplanted from
    meta: dict = field(default_factory=dict)

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
    loss: float | None
    skipped: bool
    seconds: float
    samples: int


def group_advantages(rewards: Sequence[float]) -> torch.Tensor:
    """(r - mean) / (std + 1e-8) within one prompt's group (unbiased std, as torch.std)."""
    r = torch.tensor(rewards, dtype=torch.float32)
    if r.numel() < 2:
        return torch.zeros_like(r)
    return (r - r.mean()) / (r.std() + 1e-8)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, *, epsilon: float, epsilon_high: float, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, clamp: float = 10.0) -> torch.Tensor:
    """Token-mean clipped surrogate loss.

    logps/old_logps/ref_logps/mask: [N, T] over completion tokens; advantages: [N].
    Per token: -min(ratio*A, clip(ratio, 1-eps, 1+eps_high)*A) + beta*KL, clamped to
    [-clamp, clamp], then averaged over every real completion token in the batch.
    """
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
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
        self.steps = 0

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
    def _pack(self, groups: Sequence[Group]):
        """Right-padded [N, L] batch of prompt+completion and a mask over completion tokens."""
        rows = [(g.prompt_ids, c) for g in groups for c in g.completion_ids]
        length = max(len(p) + max(len(c), 1) for p, c in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        comp_mask = torch.zeros_like(ids)
        for i, (p, c) in enumerate(rows):
            seq = p + c
            ids[i, :len(seq)] = torch.tensor(seq)
            attention[i, :len(seq)] = 1
            comp_mask[i, len(p):len(seq)] = 1
        return ids.to(self.device), attention.to(self.device), comp_mask.to(self.device)

    def _token_logps(self, model, ids, attention) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1]
        logits = logits.float() / self.settings.temperature
        targets = ids[:, 1:]
        return torch.gather(F.log_softmax(logits, dim=-1), 2, targets.unsqueeze(-1)).squeeze(-1)

    def step(self, groups: Sequence[Group], rewards: Sequence[Sequence[float]]) -> StepResult:
        """One GRPO update over all groups; skipped when no group has differing rewards."""
        start = time.perf_counter()
        samples = sum(len(g.completion_ids) for g in groups)
        advantages = torch.cat([group_advantages(r) for r in rewards]).to(self.device)
        if not groups or bool((advantages == 0).all()):
            return StepResult(None, True, time.perf_counter() - start, samples)
        ids, attention, comp_mask = self._pack(groups)
        mask = comp_mask[:, 1:]
        self.model.train()
        logps = self._token_logps(self.model, ids, attention)
        ref_logps = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logps = self._token_logps(self.ref_model, ids, attention)
        s = self.settings
        # one update per batch of samples: the sampling policy is the current one
        loss = grpo_loss(logps, logps.detach(), advantages, mask, epsilon=s.epsilon,
                         epsilon_high=s.epsilon_high, beta=s.beta, ref_logps=ref_logps,
                         clamp=s.loss_clamp)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
        self.optimizer.step()
        self.steps += 1
        return StepResult(float(loss.detach()), False, time.perf_counter() - start, samples)
