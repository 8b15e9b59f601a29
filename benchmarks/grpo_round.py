"""Round time of the GRPO trainer (generate / reward / train) against a naive baseline.

The naive baseline is what a straightforward port does: one ``generate`` call per completion,
the decoded text re-tokenised for training, and gradient checkpointing on. Both run in this
process on the same model weights, prompts and reward, for the tiny model at two sizes.

    python benchmarks/grpo_round.py [--rounds 3] [--prompts 4] [--generations 4] [--tokens 64]

Rewards here are a cheap stand-in (share of even token ids) so every round trains: a random tiny
model never writes a ```python fence, which would make every CodeZero reward equal and skip training.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from desktop.codezero.generator import ProblemGenerator  # noqa: E402
from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group  # noqa: E402
from desktop.node.models import TINY_SIZES, build_tiny_model, load_tiny_tokenizer  # noqa: E402


class NaiveTrainer(GRPOTrainer):
    """One generate call per completion; decoded text tokenised again for training."""

    @torch.no_grad()
    def generate(self, prompts, prompt_ids, should_stop=None):
        s = self.settings
        groups = []
        self.model.eval()
        for prompt, ids in zip(prompts, prompt_ids):
            texts = []
            for _ in range(s.num_generations):
                out = self.model.generate(input_ids=torch.tensor([ids], device=self.device), do_sample=True,
                                          temperature=s.temperature, top_k=0, top_p=1.0,
                                          max_new_tokens=s.max_new_tokens, pad_token_id=self.pad_id)
                texts.append(self.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True))
            prompt_text = self.tokenizer.decode(ids)
            groups.append(Group.from_text(self.tokenizer, prompt, self.tokenizer(prompt_text)["input_ids"],
                                          texts, s.max_new_tokens, source="own"))
        return groups


def reward(group: Group) -> list[float]:
    return [sum(1 for t in ids if t % 2 == 0) / max(1, len(ids)) for ids in group.completion_ids]


def run(trainer: GRPOTrainer, prompts: list[str], rounds: int) -> dict[str, float]:
    ids = [trainer.encode_prompt([{"role": "user", "content": p}]) for p in prompts]
    times = {"generate": [], "reward": [], "train": []}
    for _ in range(rounds):
        t = time.perf_counter()
        groups = trainer.generate(prompts, ids)
        times["generate"].append(time.perf_counter() - t)
        t = time.perf_counter()
        rewards = [reward(g) for g in groups]
        times["reward"].append(time.perf_counter() - t)
        times["train"].append(trainer.step(groups, rewards).seconds)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["round"] = sum(out.values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--sizes", default="tiny,tiny-m")
    args = parser.parse_args()

    tokenizer = load_tiny_tokenizer()
    gen = ProblemGenerator(seed=42)
    prompts = [gen.generate(i % 5).question for i in range(args.prompts)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.prompts} prompts x "
          f"{args.generations} completions x {args.tokens} new tokens; median of {args.rounds} rounds\n")
    header = f"{'size':8} {'params':>8} {'trainer':9} {'generate':>9} {'reward':>8} {'train':>8} {'round':>8} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for size in args.sizes.split(","):
        torch.manual_seed(0)
        model = build_tiny_model(tokenizer, TINY_SIZES[size], seed=0, warm=False)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows = {}
        for label, cls, ckpt in (("naive", NaiveTrainer, True), ("batched", GRPOTrainer, False)):
            settings = GRPOSettings(num_generations=args.generations, max_new_tokens=args.tokens,
                                    learning_rate=1e-5, gradient_checkpointing=ckpt)
            torch.manual_seed(1)
            rows[label] = run(cls(copy.deepcopy(model), tokenizer, settings), prompts, args.rounds)
        for label, r in rows.items():
            ratio = rows["naive"]["round"] / r["round"]
            print(f"{size:8} {params:7.2f}M {label:9} {r['generate']:8.2f}s {r['reward']:7.3f}s "
                  f"{r['train']:7.2f}s {r['round']:7.2f}s {ratio:8.2f}x")
    print("\nspeed-up = naive round time / this round time (goal: batched >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
