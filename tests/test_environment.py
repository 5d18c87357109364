"""One source of truth: pyproject.toml -> uv.lock -> requirements.txt and environment.yml."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def load_lock() -> dict:
    with open(ROOT / "uv.lock", "rb") as handle:
        return tomllib.load(handle)


def locked_registry_packages() -> dict[str, tuple[str, set[str]]]:
    """{name: (version, hashes of its wheels and sdist)} for every package from the registry."""
    packages = {}
    for package in load_lock()["package"]:
        if "registry" not in package.get("source", {}):
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        hashes = {file["hash"].removeprefix("sha256:") for file in files}
        packages.setdefault(package["name"], []).append((package["version"], hashes))
    return packages


def exported_requirements() -> dict[str, list[tuple[str, set[str]]]]:
    text = (ROOT / "requirements.txt").read_text()
    entries: dict[str, list[tuple[str, set[str]]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        lines = [line.strip().rstrip("\\").strip() for line in block.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if not lines:
            continue
        requirement = Requirement(lines[0])
        (specifier,) = requirement.specifier
        hashes = {line.removeprefix("--hash=sha256:") for line in lines[1:] if line.startswith("--hash=")}
        entries.setdefault(requirement.name, []).append((specifier.version, hashes))
    return entries


def test_pyproject_pins_the_course_stack():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    assert project["requires-python"] == ">=3.11,<3.12"
    for pin in ("torch==2.13.0", "torchvision==0.28.0", "d2l==1.0.3", "nbval==0.11.0"):
        assert pin in project["dependencies"]


def test_lock_was_made_from_this_pyproject():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        declared = {str(Requirement(spec)) for spec in tomllib.load(handle)["project"]["dependencies"]}
    (root_package,) = [package for package in load_lock()["package"]
                       if package.get("source", {}).get("editable") == "."]
    locked = {str(Requirement(f"{item['name']}{item.get('specifier', '')}"))
              for item in root_package["metadata"]["requires-dist"]}
    assert declared == locked, "uv.lock is stale: run `make lock`"


def test_requirements_txt_matches_the_lock_with_hashes():
    locked, exported = locked_registry_packages(), exported_requirements()
    assert set(exported) == set(locked), "requirements.txt and uv.lock name different packages: `make lock`"
    for name, entries in exported.items():
        for version, hashes in entries:
            matches = [lock_hashes for lock_version, lock_hashes in locked[name] if lock_version == version]
            assert matches, f"{name}=={version} is not the locked version"
            assert hashes and hashes <= matches[0], f"{name}: hashes differ from uv.lock"


def test_d2l_pins_are_what_is_locked():
    locked = {name: entries[0][0] for name, entries in locked_registry_packages().items()}
    assert locked["numpy"] == "1.23.5" and locked["matplotlib"] == "3.7.2" and locked["torch"] == "2.13.0"


def test_environment_yml_installs_the_locked_requirements():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*-\s*pip\s*$", text, re.MULTILINE)
    assert "- --require-hashes" in text and "- -r requirements.txt" in text


def find_uv() -> str | None:
    return shutil.which("uv") or next((str(path) for path in [ROOT / ".tools/uv/bin/uv"] if path.exists()), None)


@pytest.mark.skipif(find_uv() is None, reason="uv is not installed (make bootstraps it into .tools/)")
def test_requirements_txt_is_exactly_uv_export():
    exported = subprocess.run(
        [find_uv(), "export", "--frozen", "--no-emit-project", "--no-header", "--format", "requirements-txt"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    assert exported == (ROOT / "requirements.txt").read_text(), "requirements.txt drifted: run `make lock`"


def test_d2l_imports_in_this_environment():
    from d2l import torch as d2l

    assert hasattr(d2l, "masked_softmax")
