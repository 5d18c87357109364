"""The `attn` command: help, doctor."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from importlib import metadata

import torch

from utils.course.cli import COMMANDS
from utils.course.doctor import built_by_uv, out_of_range, version_drift


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
    for heading in (f"python: {platform.python_version()}", f"torch: {torch.__version__}", "device:",
                    f"d2l: {metadata.version('d2l')}", "versions vs uv.lock", "data cache:"):
        assert heading in result.stdout


def test_doctor_checks_the_course_ranges_not_the_lock_pins():
    def named(items: list[str]) -> dict[str, str]:  # "torch>=2.11 (2.10.0)" -> {"torch": "2.10.0"}
        return {re.match(r"[A-Za-z0-9_.-]+", item).group(): item.split(" (", 1)[1].rstrip(")")
                for item in items}

    assert named(out_of_range({"torch": "2.10.0"}))["torch"] == "2.10.0"
    assert named(out_of_range({}))["numpy"] == "not installed"
    assert not {"torch", "numpy"} & set(named(out_of_range({"torch": "2.11.0", "numpy": "2.4.6"})))


def test_doctor_reads_a_checkout_that_is_not_installed(monkeypatch):
    """Run from its folder on a bare PyTorch machine (PYTHONPATH, no `pip install`), the course has no
    package metadata: doctor reads pyproject.toml instead of failing with a traceback."""
    from utils.course import doctor

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor.metadata, "metadata", not_installed)
    monkeypatch.setattr(doctor.metadata, "requires", not_installed)
    supported, requirements, where = doctor.course_metadata()
    assert supported == ">=3.11,<3.14" and "torch>=2.11" in requirements
    assert where.startswith("not installed: run from ")
    lines, _ = doctor.report()
    assert any(line.startswith("course: not installed") for line in lines)


def test_doctor_knows_a_uv_environment_from_its_pyvenv_cfg(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nuv = 0.13.8\nversion_info = 3.12.1\n")
    assert built_by_uv(str(tmp_path))
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert not built_by_uv(str(tmp_path))
    assert not built_by_uv(str(tmp_path / "missing"))


def test_version_drift_ignores_local_build_tags_but_not_versions():
    locked = {"torch": "2.13.0", "numpy": "1.23.5"}
    assert version_drift(locked, {"torch": "2.13.0+cu130", "numpy": "1.23.5"}) == []
    assert version_drift(locked, {"torch": "2.13.0", "numpy": "2.1.0"}) == ["numpy 2.1.0 (lock: 1.23.5)"]
