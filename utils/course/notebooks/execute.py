"""Execute a notebook in a fresh kernel of this environment, in a given profile."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import nbformat

from utils.atomic import atomic_open

# Stored outputs must not depend on the CPU that computed them. One thread fixes the order of
# every reduction; then each library that picks its kernels by CPU is pinned to one code path:
# torch's own kernels and oneDNN's (the LSTM) to AVX2, which every x86-64 CPU of the last decade
# has, and MKL (matrix products) to its COMPATIBLE branch, the only one Intel documents as giving
# the same bits on Intel and AMD CPUs (its AVX2 branch falls back to another on AMD). Measured on
# an AVX2 AMD EPYC: without the pins a chapter 04 training cell printed accuracy 0.97 where an
# Intel machine had stored 0.95; the pins cost about 8% of the notebooks' run time.
PINNED_CPU_ENV = {
    "OMP_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
}


@contextlib.contextmanager
def _environment(**variables: str):
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(notebook, *, cwd: Path, profile: str = "smoke", timeout_cell: int = 300,
            allow_errors: bool = False):
    """Run every cell of ``notebook`` (a NotebookNode) in place and return it.

    The kernel is this environment's ``python3`` and starts in ``cwd``; the profile
    reaches it through ``$COURSE_PROFILE``. Outputs are what the cells really printed.
    """
    from nbclient import NotebookClient

    # pinned as under `make test` (see conftest.py), so stored outputs are what nbval recomputes
    with _environment(COURSE_PROFILE=profile, PYDEVD_DISABLE_FILE_VALIDATION="1", **PINNED_CPU_ENV):
        client = NotebookClient(notebook, kernel_name="python3", timeout=timeout_cell,
                                allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    return notebook


def execute_file(path: Path, *, profile: str = "smoke", allow_errors: bool = False) -> None:
    """Execute the notebook at ``path`` and write it back with its new outputs."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    execute(notebook, cwd=path.parent, profile=profile, allow_errors=allow_errors)
    write(notebook, path)


def write(notebook, path: Path) -> None:
    """Write atomically: a crash never leaves a half-written notebook."""
    with atomic_open(path, "w", encoding="utf-8") as file:
        nbformat.write(notebook, file)
