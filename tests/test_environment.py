"""One source of truth: pyproject.toml (ranges) -> uv.lock (pins) -> requirements.txt and environment.yml."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
# what the course runs on; CI tests each (.ci/run)
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")
# what a learner's kernel does not need: `pip install -e .` must not pull them in
TOOLS = {"pytest", "pytest-xdist", "hypothesis", "playwright", "ruff", "nbval", "jupyterlab"}


def load_toml(name: str) -> dict:
    with open(ROOT / name, "rb") as handle:
        return tomllib.load(handle)


def load_lock() -> dict:
    return load_toml("uv.lock")


def root_package(lock: dict) -> dict:
    (package,) = [package for package in lock["package"] if package.get("source", {}).get("editable") == "."]
    return package


def locked_registry_packages() -> dict[str, list[tuple[str, set[str], list[str]]]]:
    """{name: [(version, hashes of its wheels and sdist, its wheel file names)]}, registry packages."""
    packages: dict[str, list[tuple[str, set[str], list[str]]]] = {}
    for package in load_lock()["package"]:
        if "registry" not in package.get("source", {}):
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        hashes = {file["hash"].removeprefix("sha256:") for file in files}
        wheels = [file["url"].rsplit("/", 1)[-1] for file in package.get("wheels", [])]
        packages.setdefault(package["name"], []).append((package["version"], hashes, wheels))
    return packages


def reachable_without(lock: dict, left_out_group: str) -> set[str]:
    """Names of the locked packages the course needs with every group but ``left_out_group``.

    Markers are ignored (the export is universal: it keeps every platform's packages).
    """
    packages: dict[str, list[dict]] = {}
    for package in lock["package"]:
        packages.setdefault(package["name"], []).append(package)
    root = root_package(lock)
    todo = [*root.get("dependencies", [])]
    for group, dependencies in root.get("dev-dependencies", {}).items():
        todo += dependencies if group != left_out_group else []
    seen: set[tuple[str, str | None]] = set()  # (package, one of its extras or None for itself)
    while todo:
        dependency = todo.pop()
        for name, extra in [(dependency["name"], None), *((dependency["name"], extra)
                                                          for extra in dependency.get("extra", []))]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for package in packages[name]:
                todo += (package.get("dependencies", []) if extra is None
                         else package.get("optional-dependencies", {}).get(extra, []))
    return {name for name, _ in seen}


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


def test_pyproject_declares_ranges_and_keeps_tools_out_of_the_package():
    pyproject = load_toml("pyproject.toml")
    project, groups = pyproject["project"], pyproject["dependency-groups"]
    requires = SpecifierSet(project["requires-python"])
    assert [version for version in ("3.10", *SUPPORTED_PYTHONS, "3.14") if f"{version}.0" in requires] \
        == list(SUPPORTED_PYTHONS)
    requirements = {Requirement(spec).name: Requirement(spec) for spec in project["dependencies"]}
    pinned = [str(req) for req in requirements.values() if any(s.operator == "==" for s in req.specifier)]
    assert not pinned, f"pins belong in uv.lock, ranges in pyproject.toml: {pinned}"
    assert "2.11.0" in requirements["torch"].specifier, "the oldest torch CI tests (.ci/run) must stay allowed"
    assert not TOOLS & set(requirements), "test and lab tools go in dependency groups"
    assert TOOLS <= {Requirement(spec).name for spec in groups["dev"] + groups["lab"]}
    # d2l's hard pins cannot be met on 3.12+: it stays out of the package, pip installs it --no-deps
    assert "d2l" not in requirements and groups["reference"] == ["d2l==1.0.3"]
    assert pyproject["tool"]["uv"]["default-groups"] == "all", "make test needs the dev group"


def test_lock_was_made_from_this_pyproject():
    pyproject, lock = load_toml("pyproject.toml"), load_lock()
    metadata = root_package(lock)["metadata"]

    def normalized(specs) -> set[str]:
        return {str(Requirement(spec)) for spec in specs}

    def locked(items) -> set[str]:
        return {str(Requirement(f"{item['name']}{item.get('specifier', '')}")) for item in items}

    stale = "uv.lock is stale: run `make lock`"
    assert normalized(pyproject["project"]["dependencies"]) == locked(metadata["requires-dist"]), stale
    assert {group: normalized(specs) for group, specs in pyproject["dependency-groups"].items()} \
        == {group: locked(items) for group, items in metadata["requires-dev"].items()}, stale
    tool = pyproject["tool"]["uv"]
    assert normalized(tool["override-dependencies"]) == locked(lock["manifest"]["overrides"]), stale
    assert normalized(tool["constraint-dependencies"]) == locked(lock["manifest"]["constraints"]), stale
    assert SpecifierSet(lock["requires-python"]) == SpecifierSet(pyproject["project"]["requires-python"]), stale


def test_lock_holds_one_version_of_the_computing_stack_for_every_python():
    # 3.11, 3.12 and 3.13 must compute with the same libraries (the constraints in pyproject.toml)
    packages = locked_registry_packages()
    for name in ("torch", "torchvision", "numpy", "scipy", "matplotlib", "pandas", "d2l"):
        assert len(packages[name]) == 1, f"uv.lock holds several {name} versions: {packages[name]}"


def test_lock_has_wheels_for_every_supported_python():
    packages = locked_registry_packages()
    for name in ("torch", "torchvision", "numpy", "scipy", "matplotlib", "pandas"):
        ((version, _, wheels),) = packages[name]
        linux = [parse_wheel_filename(wheel)[3] for wheel in wheels if "manylinux" in wheel and "x86_64" in wheel]
        interpreters = {tag.interpreter for tags in linux for tag in tags}
        for python in SUPPORTED_PYTHONS:
            tag = "cp" + python.replace(".", "")
            assert tag in interpreters or "py3" in interpreters, f"{name}=={version}: no {tag} wheel for Linux"


def test_requirements_txt_matches_the_lock_with_hashes_for_every_python():
    lock, locked, exported = load_lock(), locked_registry_packages(), exported_requirements()
    # everything the course installs, except d2l (`reference`): its hard pins would stop pip
    expected = reachable_without(lock, "reference") & set(locked)
    assert "d2l" not in exported and set(exported) == expected, \
        "requirements.txt and uv.lock name different packages: `make lock`"
    for name, entries in exported.items():
        for version, hashes in entries:
            matches = [lock_hashes for lock_version, lock_hashes, _ in locked[name] if lock_version == version]
            assert matches, f"{name}=={version} is not the locked version"
            assert hashes and hashes == matches[0], f"{name}: hashes differ from uv.lock"


def test_documented_d2l_installs_are_the_locked_one():
    # outside uv, d2l is installed by hand (`pip install --no-deps ... d2l==VERSION`): README and
    # environment.yml must name the lock's version wherever they name one
    ((version, _, _),) = locked_registry_packages()["d2l"]
    for document in ("README.md", "environment.yml"):
        text = (ROOT / document).read_text()
        assert "pip install --no-deps -e . d2l==" in text, f"{document} lost the d2l install step"
        assert set(re.findall(r"d2l==([\w.]+)", text)) == {version}, f"{document}: d2l is locked at {version}"


def test_environment_yml_installs_the_locked_requirements():
    text = (ROOT / "environment.yml").read_text()
    python = re.search(r"^\s*-\s*python(\S*)\s*$", text, re.MULTILINE)
    assert python and SpecifierSet(python.group(1)) == SpecifierSet(load_toml("pyproject.toml")["project"]
                                                                      ["requires-python"])
    assert re.search(r"^\s*-\s*pip\s*$", text, re.MULTILINE)
    assert "- --require-hashes" in text and "- -r requirements.txt" in text


def find_uv() -> str | None:
    return shutil.which("uv") or next((str(path) for path in [ROOT / ".tools/uv/bin/uv"] if path.exists()), None)


def makefile_export_args() -> list[str]:
    match = re.search(r"^EXPORT_ARGS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile's EXPORT_ARGS (how `make lock` exports requirements.txt) is gone"
    return shlex.split(match.group(1))


@pytest.mark.skipif(find_uv() is None, reason="uv is not installed (make bootstraps it into .tools/)")
def test_requirements_txt_is_exactly_uv_export():
    exported = subprocess.run([find_uv(), "export", *makefile_export_args()],
                              cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    assert exported == (ROOT / "requirements.txt").read_text(), "requirements.txt drifted: run `make lock`"


def test_d2l_imports_in_this_environment():
    from d2l import torch as d2l

    assert hasattr(d2l, "masked_softmax")
