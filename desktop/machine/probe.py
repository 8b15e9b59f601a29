"""Hardware probe: what this machine has, which model pool it should join, and warnings.

Used by the GUI before anything heavy is installed or loaded, so torch is imported lazily
(and may be missing: the probe then reports CPU only and says torch is absent).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

GIB = 1024 ** 3

POOLS: dict[str, list[str]] = {
    "tiny": ["tiny:tiny"],
    "small": ["Qwen/Qwen2.5-Coder-0.5B-Instruct"],
    "large": ["Qwen/Qwen2.5-Coder-1.5B-Instruct", "deepseek-ai/deepseek-coder-1.3b-instruct"],
}
LARGE_POOL_VRAM = 40 * GIB

# (warn below, fail below) in GiB. Full fine-tuning with Adam needs ~16 bytes per parameter
# plus activations; on CPU (and Apple unified memory) that all lives in system RAM.
RAM_LIMITS = {"tiny": (2, 1), "small": (8, 4), "large": (16, 8)}
# Minimum VRAM per pool on a CUDA GPU; below it training is likely to run out of memory.
VRAM_WARN = {"tiny": 0, "small": 8 * GIB, "large": LARGE_POOL_VRAM}
DISK_WARN = 10 * GIB
DISK_FAIL = 2 * GIB


@dataclass
class GpuInfo:
    index: int
    name: str
    vram_bytes: int


@dataclass
class ProbeResult:
    gpus: list[GpuInfo]
    mps: bool
    cpu_cores: int
    ram_bytes: int
    ram_available_bytes: int
    disk_free_bytes: int
    disk_path: str
    torch_version: str | None
    pool: str
    pool_reason: str
    device: str
    # Each: {"name", "ok", "level", "message"}. ok is False only for level "fail": a warning
    # does not block starting a node.
    checks: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def worst_level(self) -> str:
        levels = {c["level"] for c in self.checks}
        return next((lvl for lvl in ("fail", "warn") if lvl in levels), "ok")


def choose_pool(gpus: list[GpuInfo], override: str | None = None) -> tuple[str, str]:
    """(pool, reason). GPU 0 with >= 40 GiB VRAM joins "large"; everything else "small"."""
    if override is not None:
        if override not in POOLS:
            raise ValueError(f"unknown pool {override!r}; choose one of {', '.join(POOLS)}")
        return override, f"pool {override!r} was chosen explicitly (override)"
    if not gpus:
        return "small", "no CUDA GPU (CPU or Apple GPU): the small pool fits"
    gpu = gpus[0]
    vram = _gib(gpu.vram_bytes)
    if gpu.vram_bytes >= LARGE_POOL_VRAM:
        return "large", f"GPU 0 ({gpu.name}) has {vram} of VRAM, at least 40 GiB"
    return "small", f"GPU 0 ({gpu.name}) has {vram} of VRAM, under the 40 GiB the large pool needs"


def _detect_torch() -> tuple[str | None, list[GpuInfo], bool]:
    """(torch version, CUDA GPUs, MPS available). Never raises: a broken driver means CPU."""
    try:
        import torch  # ~2 s: only `rl-swarm probe` and the node ask for GPUs (the app reads the probe's JSON)
    except Exception:  # ImportError, or a torch install broken in some other way
        return None, [], False
    gpus: list[GpuInfo] = []
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                gpus.append(GpuInfo(index=i, name=props.name, vram_bytes=int(props.total_memory)))
    except Exception:
        gpus = []
    try:
        mps = bool(torch.backends.mps.is_available())
    except Exception:
        mps = False
    return str(torch.__version__), gpus, mps


def probe_gpus() -> list[GpuInfo]:
    """CUDA GPUs only (what the pool rule needs), without the RAM/disk checks."""
    return _detect_torch()[1]


def _existing_ancestor(path: Path) -> Path:
    # The data dir may not exist before the first run; its free space is its parent's.
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _cpu_cores() -> int:
    # Cores this process may actually use (containers, taskset), not the whole host's.
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def _check(name: str, level: str, message: str) -> dict:
    return {"name": name, "ok": level != "fail", "level": level, "message": message}


def _checks(r: ProbeResult) -> list[dict]:
    checks = []
    if r.torch_version is None:
        checks.append(_check("torch", "fail", "PyTorch is not installed; a node cannot train."))
    else:
        checks.append(_check("torch", "ok", f"PyTorch {r.torch_version}"))

    warn_gib, fail_gib = RAM_LIMITS[r.pool]
    ram = f"{_gib(r.ram_bytes)} RAM"
    if r.ram_bytes < fail_gib * GIB:
        checks.append(_check("ram", "fail", f"{ram}; the {r.pool} pool needs at least "
                                            f"{fail_gib} GiB (recommended {warn_gib} GiB)."))
    elif r.ram_bytes < warn_gib * GIB:
        checks.append(_check("ram", "warn", f"{ram}; {warn_gib} GiB is recommended for the "
                                            f"{r.pool} pool, training may swap or be killed."))
    else:
        checks.append(_check("ram", "ok", f"{ram} ({_gib(r.ram_available_bytes)} free)"))

    disk = f"{_gib(r.disk_free_bytes)} free at {r.disk_path}"
    if r.disk_free_bytes < DISK_FAIL:
        checks.append(_check("disk", "fail", f"Only {disk}; at least 2 GiB is needed for "
                                             "models and checkpoints."))
    elif r.disk_free_bytes < DISK_WARN:
        checks.append(_check("disk", "warn", f"Only {disk}; 10 GiB is recommended for "
                                             "models and checkpoints."))
    else:
        checks.append(_check("disk", "ok", disk))

    if r.gpus:
        gpu = r.gpus[0]
        need = VRAM_WARN[r.pool]
        if gpu.vram_bytes < need:
            checks.append(_check("gpu", "warn", f"{gpu.name} has {_gib(gpu.vram_bytes)} of VRAM; "
                                                f"the {r.pool} pool wants {_gib(need)}, training "
                                                "may run out of memory."))
        else:
            checks.append(_check("gpu", "ok", f"{gpu.name} with {_gib(gpu.vram_bytes)} of VRAM"))
    elif r.mps:
        level = "warn" if r.pool == "large" else "ok"
        checks.append(_check("gpu", level, "Apple GPU (MPS), sharing system memory"
                             + ("; the large pool will be slow." if level == "warn" else "")))
    else:
        level = "warn" if r.pool == "large" else "ok"
        tail = "; the large pool is very slow on CPU." if level == "warn" else " (slower, supported)."
        checks.append(_check("gpu", level, "No GPU: training runs on the CPU" + tail))
    return checks


def probe(data_dir: Path, *, pool_override: str | None = None) -> ProbeResult:
    """Inspect this machine. ``data_dir`` need not exist yet (its nearest parent is used)."""
    torch_version, gpus, mps = _detect_torch()
    pool, reason = choose_pool(gpus, pool_override)
    mem = psutil.virtual_memory()
    disk_path = _existing_ancestor(Path(data_dir))
    result = ProbeResult(
        gpus=gpus,
        mps=mps,
        cpu_cores=_cpu_cores(),
        ram_bytes=int(mem.total),
        ram_available_bytes=int(mem.available),
        disk_free_bytes=int(shutil.disk_usage(disk_path).free),
        disk_path=str(disk_path),
        torch_version=torch_version,
        pool=pool,
        pool_reason=reason,
        device="cuda" if gpus else "mps" if mps else "cpu",
    )
    result.checks = _checks(result)
    return result


def format_table(result: ProbeResult) -> str:
    """A few aligned lines for the terminal (``rl-swarm probe``) and the GUI's details box."""
    if result.gpus:
        gpu_lines = [f"{g.index}: {g.name}, {_gib(g.vram_bytes)}" for g in result.gpus]
    else:
        gpu_lines = ["Apple GPU (MPS)" if result.mps else "none"]
    rows = [
        ("CPU cores", str(result.cpu_cores)),
        ("RAM", f"{_gib(result.ram_bytes)} ({_gib(result.ram_available_bytes)} available)"),
        ("GPU", gpu_lines[0]),
        *[("", line) for line in gpu_lines[1:]],
        ("Disk free", f"{_gib(result.disk_free_bytes)} at {result.disk_path}"),
        ("PyTorch", result.torch_version or "not installed"),
        ("Device", result.device),
        ("Pool", f"{result.pool}: {', '.join(POOLS[result.pool])}"),
        ("", result.pool_reason),
    ]
    lines = [f"{label:<11}{value}" for label, value in rows]
    lines.append("Checks")
    lines += [f"  [{c['level']:<4}] {c['name']:<6} {c['message']}" for c in result.checks]
    return "\n".join(lines)
