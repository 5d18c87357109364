"""``attn doctor``: is this environment the one the course is tested in?"""

from __future__ import annotations

import os
import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from utils.data.fra_eng import CACHE_ENV_VAR, fra_eng_path, verify_file

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "attention-step-by-step"


def locked_versions(lock_path: Path) -> dict[str, str]:
    """``{package: version}`` from ``uv.lock`` (registry packages only, not the course itself)."""
    try:
        with open(lock_path, "rb") as handle:
            lock = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{lock_path} is not valid TOML ({error}): restore it with `git checkout uv.lock`, "
                         f"or rebuild it with `make lock`") from None
    return {package["name"]: package["version"] for package in lock.get("package", [])
            if "registry" in package.get("source", {})}


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_versions() -> dict[str, str]:
    return {_normalize(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def version_drift(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """Packages installed at another version than the lock's (a local tag such as +cu130 is fine)."""
    drift = []
    for name, version in sorted(locked.items()):
        have = installed.get(_normalize(name))
        if have is not None and have.split("+")[0] != version:
            drift.append(f"{name} {have} (lock: {version})")
    return drift


def course_metadata() -> tuple[str | None, list[str], str]:
    """``(Requires-Python, requirements, where they come from)`` of the course.

    From the installed package's metadata; for a course run from its folder without being
    installed (``PYTHONPATH``, as on a bare PyTorch machine), from that folder's
    ``pyproject.toml``; ``(None, [], ...)`` when neither is there.
    """
    try:
        return metadata.metadata(DISTRIBUTION)["Requires-Python"], metadata.requires(DISTRIBUTION) or [], "installed"
    except metadata.PackageNotFoundError:
        pyproject = PROJECT_ROOT / "pyproject.toml"
        if not pyproject.is_file():
            return None, [], "not installed, and no pyproject.toml beside it"
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        return (project.get("requires-python"), project.get("dependencies", []),
                f"not installed: run from {PROJECT_ROOT} (`pip install -e .` there installs it)")


def out_of_range(installed: dict[str, str], requirements: list[str] | None = None) -> list[str]:
    """The course's requirements (pyproject.toml's ranges; default: ``course_metadata``'s) that
    this environment misses."""
    missing = []
    for spec in course_metadata()[1] if requirements is None else requirements:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        have = installed.get(_normalize(requirement.name))
        if have is None or not requirement.specifier.contains(have, prereleases=True):
            missing.append(f"{requirement} ({'not installed' if have is None else have})")
    return missing


def built_by_uv(prefix: str = sys.prefix) -> bool:
    """Is this the course's own environment (uv writes its version into the venv's pyvenv.cfg)?"""
    config = Path(prefix) / "pyvenv.cfg"
    return config.exists() and any(line.split("=")[0].strip() == "uv"
                                   for line in config.read_text().splitlines())


def data_cache_line() -> str:
    path = fra_eng_path()
    source = f"${CACHE_ENV_VAR}" if os.environ.get(CACHE_ENV_VAR, "").strip() else "default"
    if not path.exists():
        state = "not downloaded yet (`attn data` fetches it)"
    else:
        state = "present, SHA-1 verified" if verify_file(path) else "present but CORRUPT (delete it)"
    return f"data cache: {path.parent} ({source}); {path.name} {state}"


def report() -> tuple[list[str], list[str]]:
    """(lines to print, problems found)."""
    lines, problems = [], []
    lines.append(f"python: {platform.python_version()} ({sys.executable})")
    supported, requirements, where = course_metadata()
    lines.append(f"course: {where}")
    if supported and not SpecifierSet(supported).contains(platform.python_version()):
        problems.append(f"the course runs on Python {supported}")
    lines.append(f"platform: {platform.platform()}")
    cuda = torch.cuda.is_available()
    lines.append(f"torch: {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})")
    if cuda:
        names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        lines.append(f"device: cuda ({', '.join(names)}); bf16: {torch.cuda.is_bf16_supported()}")
    else:
        lines.append(f"device: cpu ({os.cpu_count()} cores); no CUDA device, notebooks use the cpu profile")
    lines.append(f"COURSE_PROFILE: {os.environ.get('COURSE_PROFILE') or '(unset: gpu with CUDA, else cpu)'}")
    try:
        from d2l import torch as d2l  # noqa: F401

        lines.append(f"d2l: {metadata.version('d2l')} (imports)")
    except Exception as error:  # any import failure is what doctor is for
        lines.append(f"d2l: cannot be imported ({type(error).__name__}: {error})")
        problems.append("d2l does not import")
    installed = installed_versions()
    missing = out_of_range(installed, requirements)
    lines += [f"  outside the course's range: {item}" for item in missing]
    if missing:
        problems.append(f"{len(missing)} requirements not met (`pip install -e .` in the course folder)")
    lock_path = PROJECT_ROOT / "uv.lock"
    if lock_path.exists():
        try:
            locked = locked_versions(lock_path)
        except ValueError as error:
            lines.append(f"versions vs uv.lock: {error}")
            problems.append("uv.lock is damaged")
        else:
            drift = version_drift(locked, installed)
            own = built_by_uv()
            lines.append(f"versions vs uv.lock: {len(locked)} locked, {len(drift)} differ"
                         + ("" if own else " (an environment not built from the lock: fine within"
                                           " the course's ranges; stored outputs used the lock's)"))
            lines += [f"  differs: {item}" for item in drift]
            if drift and own:
                problems.append(f"{len(drift)} packages differ from uv.lock (run `make env` or `uv sync --frozen`)")
    else:
        lines.append("versions vs uv.lock: no uv.lock beside the package (installed without the repo)")
    lines.append(data_cache_line())
    from utils.course.notebooks.sandbox import (
        describe,  # for instructors: is `attn grade` sealed here?
    )

    lines.append(describe())
    return lines, problems


def configure(parser) -> None:  # no options
    pass


def run(args) -> int:
    lines, problems = report()
    print("\n".join(lines))
    if problems:
        print("problems:\n" + "\n".join(f"  - {problem}" for problem in problems))
        return 1
    print("all good")
    return 0
