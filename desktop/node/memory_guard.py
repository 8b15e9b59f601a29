"""Will the model fit? An estimate of a node's memory, checked before the model is loaded.

A node that runs out of memory is killed by the OS mid-round (rl-swarm's most reported
failure); refusing up front with the numbers and what to change is kinder. The estimate, for
a decoder of P parameters in dtype of b bytes, trained with Adam on micro-batches:

    weights P*b + gradients P*b + Adam's two moments 2*P*b (+ P*b for a reference model, beta > 0)
    + training activations: tokens * layers * (12*hidden + 3*intermediate) * b, tokens: a micro-batch
      (its budget, or less when a round has fewer: G * groups * (prompt + max_new_tokens))
      + one logit chunk: logit_chunk * vocab * b * 3 (logits, their softmax, its gradient)
    + generation: the KV cache of G*groups rows of (prompt + max_new_tokens) tokens, and one
      step's logits for each row
    + the runtime: what is resident now (torch, transformers: the process's RSS at the check) and
      what loads after it (generation code, tokenizer, problem sets, judge threads: RUNTIME_GROWTH_MB,
      measured ~280 MB on a tiny node on CPU)

Sizes come from the model's config.json (a local folder or a finished download), the tiny
specs, or the published configs of the pool's Hub models. Light: numbers only, no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PROMPT_TOKENS = 256   # a generous chat prompt (system + problem) for the KV cache
LOGIT_CHUNK = 512     # grpo.GRPOSettings.logit_chunk
RUNTIME_GROWTH_MB = 300.0
HEADROOM = 0.9        # of the free memory: the rest is for the OS and the other processes

# the published configs of the pools' Hub models, for an estimate before the download
KNOWN = {
    "Qwen/Qwen2.5-Coder-0.5B-Instruct": dict(hidden_size=896, num_hidden_layers=24, intermediate_size=4864,
                                              vocab_size=151936, num_attention_heads=14,
                                              num_key_value_heads=2, tie_word_embeddings=True),
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": dict(hidden_size=1536, num_hidden_layers=28, intermediate_size=8960,
                                              vocab_size=151936, num_attention_heads=12,
                                              num_key_value_heads=2, tie_word_embeddings=True),
    "deepseek-ai/deepseek-coder-1.3b-instruct": dict(hidden_size=2048, num_hidden_layers=24,
                                                      intermediate_size=5504, vocab_size=32256,
                                                      num_attention_heads=16, num_key_value_heads=16,
                                                      tie_word_embeddings=False, attention_bias=False),
}


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool
    qkv_bias: bool = True  # Qwen2 has biases on q, k and v; Llama-style models do not

    @classmethod
    def from_config(cls, c: dict) -> "Shape":
        heads = int(c.get("num_attention_heads") or 1)
        return cls(int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c.get("intermediate_size") or
                   4 * int(c["hidden_size"])), int(c["vocab_size"]), heads,
                   int(c.get("num_key_value_heads") or heads), bool(c.get("tie_word_embeddings", False)),
                   bool(c.get("attention_bias", c.get("model_type", "qwen2") == "qwen2")))

    @property
    def parameters(self) -> int:
        h, kv = self.hidden, self.hidden * self.kv_heads // max(1, self.heads)
        per_layer = h * h * 2 + h * kv * 2 + 3 * h * self.intermediate + 2 * h  # q,o; k,v; MLP; norms
        per_layer += (h + 2 * kv) if self.qkv_bias else 0
        embed = self.vocab * h * (1 if self.tied else 2)
        return self.layers * per_layer + embed + h


@dataclass(frozen=True)
class Estimate:
    total_mb: float
    parts_mb: dict
    parameters: int

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:,.0f} MB" for k, v in self.parts_mb.items() if v >= 1)
        return f"about {self.total_mb:,.0f} MB ({parts})"


def shape_of(name: str, folder: Path | None = None) -> Shape | None:
    """The model's shape from a folder's config.json, the tiny specs or KNOWN; None if unknown."""
    if name.startswith("tiny"):
        from desktop.node.models import TINY_SIZES, load_tiny_tokenizer  # torch: the estimate itself stays light

        spec = TINY_SIZES.get(name.partition(":")[2] or "tiny")
        if spec is None:
            return None
        return Shape(spec.hidden_size, spec.num_layers, spec.intermediate_size, len(load_tiny_tokenizer()),
                     spec.num_heads, spec.num_kv_heads, True)
    for candidate in [folder, Path(name).expanduser()]:
        if candidate is not None and (candidate / "config.json").is_file():
            try:
                return Shape.from_config(json.loads((candidate / "config.json").read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return Shape.from_config(KNOWN[name]) if name in KNOWN else None


def estimate(shape: Shape, *, dtype_bytes: int, generations: int, max_new_tokens: int, groups: int,
             micro_batch_tokens: int, trained_groups: int | None = None, beta: float = 0.0,
             checkpointing: bool = False, resident_mb: float = 0.0) -> Estimate:
    """``groups``: prompts generated per round; ``trained_groups``: groups a step trains on
    (own + peers'), which bounds a micro-batch below its token budget in a small round."""
    p, b, mb = shape.parameters, dtype_bytes, 2 ** 20
    head_dim = shape.hidden // max(1, shape.heads)
    rows = generations * groups
    tokens = min(micro_batch_tokens, generations * (trained_groups or groups) * (PROMPT_TOKENS + max_new_tokens))
    per_token_layer = 12 * shape.hidden + 3 * shape.intermediate
    # with checkpointing a layer keeps only its input; one layer's full activations are rebuilt at a time
    kept = (tokens * shape.layers * shape.hidden + tokens * per_token_layer) if checkpointing \
        else tokens * shape.layers * per_token_layer
    parts = {
        "runtime": resident_mb + RUNTIME_GROWTH_MB,
        "weights": p * b / mb,
        "gradients": p * b / mb,
        "optimiser": 2 * p * b / mb,
        "reference": p * b / mb if beta > 0 else 0.0,
        "activations": (kept * b + LOGIT_CHUNK * shape.vocab * b * 3) / mb,
        "generation": (rows * (PROMPT_TOKENS + max_new_tokens) * shape.layers * 2 * shape.kv_heads * head_dim * b
                       + rows * shape.vocab * 4 * 2) / mb,
    }
    return Estimate(sum(parts.values()), parts, p)


def advice(config, est: Estimate) -> list[str]:
    """What would make it fit, in the config's own words."""
    t = config.training
    tips = []
    if config.model.pool in ("large", "auto") or config.model.name:
        tips.append("a smaller model (model.pool: small, or tiny to try the app)")
    if config.model.dtype == "float32":
        tips.append("model.dtype: bfloat16 (halves weights and optimiser state)")
    if t.num_generations > 2:
        tips.append(f"fewer completions per problem (training.num_generations: {max(2, t.num_generations // 2)})")
    if t.max_new_tokens > 128:
        tips.append(f"shorter completions (training.max_new_tokens: {t.max_new_tokens // 2})")
    if not t.gradient_checkpointing:
        tips.append("training.gradient_checkpointing: true (keeps one layer's activations, not all)")
    if t.micro_batch_tokens > 1024:
        tips.append(f"training.micro_batch_tokens: {t.micro_batch_tokens // 2}")
    return tips


def check(config, name: str, *, free_mb: float, resident_mb: float, folder: Path | None = None,
          dtype_bytes: int | None = None) -> Estimate | None:
    """The estimate, or None when the model's shape is unknown; raises MemoryError (message for
    the user) when it does not fit in ``free_mb``."""
    shape = shape_of(name, folder)
    if shape is None:
        return None
    t = config.training
    est = estimate(shape, dtype_bytes=dtype_bytes or DTYPE_BYTES.get(config.model.dtype, 4),
                   generations=t.num_generations, max_new_tokens=t.max_new_tokens,
                   groups=config.swarm.local_groups + 1,  # own problems and a proposer's
                   trained_groups=config.swarm.local_groups + 1 + config.swarm.external_groups,
                   micro_batch_tokens=t.micro_batch_tokens, beta=t.beta,
                   checkpointing=t.gradient_checkpointing, resident_mb=resident_mb)
    if est.total_mb - resident_mb > free_mb * HEADROOM:
        tips = advice(config, est)
        raise MemoryError(
            f"Not enough memory for {name} ({est.parameters / 1e6:,.0f}M parameters): it needs "
            f"{est.describe()}, and {free_mb:,.0f} MB is free. "
            + (f"Try: {'; '.join(tips)}." if tips else "Close other programs or use a bigger machine."))
    return est
