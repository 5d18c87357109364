"""The `attn` command: help, doctor."""

from __future__ import annotations

import subprocess
import sys

from utils.course.cli import COMMANDS
from utils.course.doctor import version_drift


def attn(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.course.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_help_lists_every_command():
    result = attn()
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_unknown_command_is_an_error():
    result = attn("fly")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_doctor_reports_the_environment(root):
    result = attn("doctor", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    for heading in ("python: 3.11", "torch: 2.13.0", "device:", "d2l: 1.0.3", "versions vs uv.lock",
                    "data cache:"):
        assert heading in result.stdout


def test_version_drift_ignores_local_build_tags_but_not_versions():
    locked = {"torch": "2.13.0", "numpy": "1.23.5"}
    assert version_drift(locked, {"torch": "2.13.0+cu130", "numpy": "1.23.5"}) == []
    assert version_drift(locked, {"torch": "2.13.0", "numpy": "2.1.0"}) == ["numpy 2.1.0 (lock: 1.23.5)"]
