"""A training process killed with SIGKILL resumes from its last checkpoint to the same parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from utils.training import read_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def subprocess_env(cache_dir) -> dict:
    """One torch thread per process; bytecode cached across the test's processes.

    Where the environment forbids writing .pyc files, every new process would
    recompile torch's optimizer dependencies (torch._dynamo, ~10 s); a
    temporary bytecode cache keeps that to the first process.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_PROFILE": "smoke"}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def attn_train(out, *extra) -> list[str]:
    return [sys.executable, "-m", "utils.course.cli", "train", "--profile", "smoke", "--out", str(out),
            "--steps", "150", "--checkpoint-every", "10", "--eval-sentences", "0", "--no-progress",
            "--threads", "1", *extra]


def test_sigkilled_run_resumes_to_the_uninterrupted_parameters(tmp_path, tmp_path_factory, root):
    env = subprocess_env(tmp_path_factory.getbasetemp() / "pycache")
    options = dict(cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    whole = subprocess.Popen(attn_train(tmp_path / "whole"), **options)
    victim = subprocess.Popen(attn_train(tmp_path / "cut"), **options)
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists():
            assert victim.poll() is None, f"finished before its first checkpoint:\n{victim.stdout.read()}"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    finally:
        victim.kill()
        victim.stdout.close()
    assert victim.returncode == -signal.SIGKILL
    saved_step = read_checkpoint(checkpoint)["step"]
    assert 10 <= saved_step < 150 and saved_step % 10 == 0  # killed mid-run, after a checkpoint

    resumed = subprocess.run(attn_train(tmp_path / "cut", "--resume"), capture_output=True, text=True,
                             cwd=root, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming at step {saved_step}" in resumed.stdout
    output, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, output

    expected = read_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    actual = read_checkpoint(checkpoint)
    assert expected["step"] == actual["step"] == 150
    assert expected["model_state"].keys() == actual["model_state"].keys()
    for name, tensor in expected["model_state"].items():
        assert torch.equal(tensor, actual["model_state"][name]), name
    for name, tensor in expected["optimizer_state"]["state"][0].items():
        assert torch.equal(tensor, actual["optimizer_state"]["state"][0][name]), name
