"""The memory guard's estimate: the parameter count against real models, the whole estimate
against the measured peak of real tiny nodes of two sizes, and the advice it gives."""

import subprocess
import time

import psutil
import pytest

from desktop.config import load_config
from desktop.node.memory_guard import KNOWN, Shape, advice, check, estimate, shape_of
from tests.procs import CLI, env


@pytest.mark.parametrize("name", ["tiny:tiny", "tiny:tiny-m"])
def test_parameter_count_of_the_tiny_models(name):
    import torch

    from desktop.node.models import load_model

    torch.set_num_threads(1)
    model, _ = load_model(name)
    assert shape_of(name).parameters == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_parameter_count_of_the_pool_models(name):
    """The pools' real architectures, built without memory (meta device) from the same config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(KNOWN[name])
    kind = "llama" if "deepseek" in name else "qwen2"
    config = AutoConfig.for_model(kind, **cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    real = sum(p.numel() for p in model.parameters())
    assert abs(Shape.from_config(cfg).parameters - real) / real < 0.001


def _peak_rss(args, cfg) -> tuple[float, float]:
    """(peak RSS of the node process in MB, the estimate it reported)."""
    proc = subprocess.Popen(CLI + args + ["--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env())
    estimate_mb = None
    peak = 0.0
    watched = psutil.Process(proc.pid)
    import threading

    def read():
        nonlocal estimate_mb
        import json
        for line in proc.stdout:
            event = json.loads(line)
            if event["type"] == "node_started":
                estimate_mb = event["memory_estimate_mb"]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.02)
    reader.join(10)
    assert proc.returncode == 0
    return peak, estimate_mb


@pytest.mark.slow
@pytest.mark.parametrize("size", ["tiny", "tiny-m"])
def test_estimate_covers_the_measured_peak_of_a_real_node(tmp_path, size):
    """Never below what a 3-round node really reaches (an under-estimate would let it crash),
    and not so far above that it refuses what would fit."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  tiny_size: {size}\ntraining:\n  max_new_tokens: 48\n  num_generations: 4\n")
    peak, est = _peak_rss(["node", "--pool", "tiny", "--rounds", "3", "--json-events",
                           "--data-dir", str(tmp_path / "d")], cfg)
    assert est is not None
    assert peak <= est <= 2.5 * peak, (peak, est)


def test_advice_names_the_settings_to_change():
    config = load_config(overrides={"model.pool": "large", "training.num_generations": 8,
                                    "training.max_new_tokens": 512})
    tips = " ".join(advice(config, None))
    for setting in ("model.pool: small", "bfloat16", "num_generations: 4", "max_new_tokens: 256",
                    "gradient_checkpointing", "micro_batch_tokens: 2048"):
        assert setting in tips


def test_check_refuses_with_numbers_and_passes_what_fits():
    config = load_config(overrides={"model.pool": "small"})
    name = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    with pytest.raises(MemoryError, match=r"494M parameters.*MB is free.*Try:"):
        check(config, name, free_mb=4000, resident_mb=500)
    fits = check(config, name, free_mb=64000, resident_mb=500)
    assert abs(fits.parameters - 494e6) < 1e6
    assert check(config, "someone/unknown-model", free_mb=1, resident_mb=1) is None  # unknown: no guess


def test_bfloat16_and_checkpointing_shrink_the_estimate():
    shape = shape_of("Qwen/Qwen2.5-Coder-1.5B-Instruct")
    kw = dict(generations=2, max_new_tokens=256, groups=2, micro_batch_tokens=4096, trained_groups=4)
    full = estimate(shape, dtype_bytes=4, **kw).total_mb
    half = estimate(shape, dtype_bytes=2, **kw).total_mb
    light = estimate(shape, dtype_bytes=4, checkpointing=True, **kw).total_mb
    assert half < 0.55 * full
    assert light < 0.7 * full


@pytest.mark.slow
def test_the_gpu_check_benchmark_runs(tmp_path):
    """The script a GPU machine runs, on the CPU at a tiny shape: it must not rot unseen."""
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--device", "cpu", "--shape", "tiny", "--rows", "2",
                           "--tokens", "4"], capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bf16/fp32: generation" in done.stdout
