"""torchrun with two CPU processes (gloo): DDP training of the smoke profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist

from utils.training import read_checkpoint
from utils.training.distributed import DistInfo, backend_for, dist_info_from_env

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def subprocess_env(cache_dir) -> dict:
    """One torch thread per process; bytecode cached across processes (see test_train_resume)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_PROFILE": "smoke"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def test_torchrun_two_cpu_processes_train_the_smoke_profile(tmp_path, tmp_path_factory, root):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "utils.course.cli", "train", "--profile", "smoke", "--steps", "20", "--checkpoint-every", "10",
               "--eval-sentences", "20", "--no-progress", "--threads", "1", "--device", "cpu",
               "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=400,
                            env=subprocess_env(tmp_path_factory.getbasetemp() / "pycache"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "x 2 processes" in result.stdout and result.stdout.count("done: 20 steps") == 1  # rank 0 only
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 20
    assert metrics["ranks_identical"] is True  # DDP kept every rank's parameters equal
    assert metrics["valid_bleu"] is not None and metrics["tokens_per_s"] > 0
    checkpoint = read_checkpoint(out / "checkpoint.pt")
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_states"]) == 2
    assert sorted(path.name for path in out.iterdir()) == ["checkpoint.pt", "metrics.json"]


def test_dist_info_from_env(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert dist_info_from_env() == DistInfo(0, 0, 1) and dist_info_from_env().is_main
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    info = dist_info_from_env()
    assert info.enabled and not info.is_main and info.world_size == 2
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2, WORLD_SIZE=2"):
        dist_info_from_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE must be an integer"):
        dist_info_from_env()


def test_backend_per_device():
    import torch

    assert backend_for(torch.device("cpu")) == "gloo" and backend_for(torch.device("cuda", 0)) == "nccl"
