"""Hardware probe: pool choice rule, sane values on this machine, and check verdicts."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import pytest

from desktop.machine import probe as probe_mod
from desktop.machine.probe import POOLS, GpuInfo, ProbeResult, choose_pool, format_table, probe

GIB = 1024 ** 3
H100 = GpuInfo(index=0, name="NVIDIA H100", vram_bytes=80 * GIB)
A40 = GpuInfo(index=0, name="NVIDIA A40", vram_bytes=40 * GIB)
RTX = GpuInfo(index=0, name="RTX 4090", vram_bytes=24 * GIB)


# --- choose_pool -------------------------------------------------------------------------

def test_large_gpu_joins_large_pool():
    assert choose_pool([H100])[0] == "large"
    assert choose_pool([A40])[0] == "large"  # exactly 40 GiB counts
    pool, reason = choose_pool([GpuInfo(0, "almost", 40 * GIB - 1)])
    assert pool == "small"
    assert "40 GiB" in reason


def test_small_gpu_and_no_gpu_join_small_pool():
    pool, reason = choose_pool([RTX])
    assert pool == "small"
    assert "RTX 4090" in reason
    pool, reason = choose_pool([])
    assert pool == "small"
    assert "no CUDA GPU" in reason


def test_only_gpu_zero_decides():
    assert choose_pool([GpuInfo(0, "small", 8 * GIB), GpuInfo(1, "big", 80 * GIB)])[0] == "small"


@pytest.mark.parametrize("override", sorted(POOLS))
def test_override_wins(override):
    for gpus in ([], [RTX], [H100]):
        pool, reason = choose_pool(gpus, override)
        assert pool == override
        assert "override" in reason


@pytest.mark.parametrize("bad", ["huge", "", "Large", "Qwen/Qwen2.5-Coder-0.5B-Instruct"])
def test_invalid_override_raises(bad):
    with pytest.raises(ValueError, match="unknown pool"):
        choose_pool([], bad)


def test_pools_table():
    assert POOLS["small"] == ["Qwen/Qwen2.5-Coder-0.5B-Instruct"]
    assert set(POOLS) == {"tiny", "small", "large"}


# --- probe() on this machine -------------------------------------------------------------

@pytest.fixture(scope="module")
def here(tmp_path_factory) -> ProbeResult:
    return probe(tmp_path_factory.mktemp("data"))


def test_probe_this_machine(here):
    assert here.cpu_cores >= 1
    assert here.ram_bytes > 0
    assert 0 <= here.ram_available_bytes <= here.ram_bytes
    assert here.disk_free_bytes > 0
    assert here.gpus == []
    assert not here.mps
    assert here.device == "cpu"  # the CI box is CPU-only
    assert here.torch_version  # torch is installed in the project venv
    assert here.pool == "small"
    assert {c["name"] for c in here.checks} == {"torch", "ram", "disk", "gpu"}
    for check in here.checks:
        assert set(check) == {"name", "ok", "level", "message"}
        assert check["level"] in {"ok", "warn", "fail"}
        assert check["ok"] == (check["level"] != "fail")


def test_to_json_is_serialisable(here):
    data = json.loads(json.dumps(here.to_json()))
    assert data["device"] == "cpu"
    assert data["gpus"] == []
    assert data["checks"] == here.checks
    text = format_table(here)
    assert "CPU cores" in text
    assert "small" in text
    assert "Checks" in text


def test_missing_data_dir_uses_nearest_existing_parent(tmp_path):
    missing = tmp_path / "not" / "yet" / "created"
    result = probe(missing)
    assert result.disk_path == str(tmp_path.absolute())
    assert not missing.exists()  # probing never creates anything


def test_pool_override_passes_through(tmp_path):
    result = probe(tmp_path, pool_override="tiny")
    assert result.pool == "tiny"
    assert "override" in result.pool_reason
    with pytest.raises(ValueError):
        probe(tmp_path, pool_override="gigantic")


# --- verdicts with faked hardware --------------------------------------------------------

Mem = namedtuple("Mem", "total available")
Disk = namedtuple("Disk", "total used free")


def _fake(monkeypatch, *, gpus=(), mps=False, torch="2.13.0", ram=32, disk=100):
    monkeypatch.setattr(probe_mod, "_detect_torch", lambda: (torch, list(gpus), mps))
    monkeypatch.setattr(probe_mod.psutil, "virtual_memory",
                        lambda: Mem(int(ram * GIB), int(ram * GIB / 2)))
    monkeypatch.setattr(probe_mod.shutil, "disk_usage",
                        lambda p: Disk(1000 * GIB, 0, int(disk * GIB)))


def _levels(result: ProbeResult) -> dict[str, str]:
    return {c["name"]: c["level"] for c in result.checks}


def test_big_gpu_machine(monkeypatch, tmp_path):
    _fake(monkeypatch, gpus=[H100, GpuInfo(1, "NVIDIA H100", 80 * GIB)])
    result = probe(tmp_path)
    assert (result.pool, result.device) == ("large", "cuda")
    assert set(_levels(result).values()) == {"ok"}
    assert result.worst_level == "ok"
    assert "1: NVIDIA H100" in format_table(result)


def test_large_override_on_small_gpu_warns(monkeypatch, tmp_path):
    _fake(monkeypatch, gpus=[RTX])
    result = probe(tmp_path, pool_override="large")
    assert _levels(result)["gpu"] == "warn"
    assert _levels(probe(tmp_path))["gpu"] == "ok"  # the small pool it would pick is fine


def test_mps_machine(monkeypatch, tmp_path):
    _fake(monkeypatch, mps=True)
    result = probe(tmp_path)
    assert (result.pool, result.device) == ("small", "mps")
    assert "MPS" in format_table(result)


@pytest.mark.parametrize("ram,level", [(32, "ok"), (6, "warn"), (3, "fail")])
def test_ram_verdicts_small_pool(monkeypatch, tmp_path, ram, level):
    _fake(monkeypatch, ram=ram)
    assert _levels(probe(tmp_path))["ram"] == level


@pytest.mark.parametrize("disk,level", [(50, "ok"), (9.5, "warn"), (1.5, "fail")])
def test_disk_verdicts(monkeypatch, tmp_path, disk, level):
    _fake(monkeypatch, disk=disk)
    result = probe(tmp_path)
    assert _levels(result)["disk"] == level
    assert result.worst_level == level
    assert [c["ok"] for c in result.checks if c["name"] == "disk"] == [level != "fail"]


def test_torch_missing(monkeypatch, tmp_path):
    _fake(monkeypatch, torch=None)
    result = probe(tmp_path)
    assert result.torch_version is None
    assert result.device == "cpu"
    assert _levels(result)["torch"] == "fail"
    assert "not installed" in format_table(result)


def test_detect_torch_copes_with_import_failure(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert probe_mod._detect_torch() == (None, [], False)


def test_one_peer_per_gpu():
    from desktop.cli.main import gpu_devices
    from desktop.local.launcher import LocalSwarm

    assert gpu_devices("all", [0, 1, 2]) == ["cuda:0", "cuda:1", "cuda:2"]
    assert gpu_devices("2,0", [0, 1, 2]) == ["cuda:2", "cuda:0"]
    for bad, present in [("all", []), ("3", [0, 1]), ("0,0", [0, 1]), ("x", [0]), ("", [0])]:
        with pytest.raises(ValueError, match="--gpus"):
            gpu_devices(bad, present)
    swarm = LocalSwarm(Path("/tmp/nowhere"), peers=2, rounds=1, chain=False, devices=["cuda:0", "cuda:1"])
    commands = [swarm._command(p, []) for p in swarm.peers]
    assert [c[c.index("--device") + 1] for c in commands] == ["cuda:0", "cuda:1"]


def test_swarm_on_gpus_without_any_says_so(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "desktop.cli", "swarm", "--gpus", "all", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    if "no CUDA GPU" not in done.stderr:
        pytest.skip("this machine has a GPU")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "swarm").exists()  # nothing started, nothing written
