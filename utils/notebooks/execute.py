"""Execute a notebook in a fresh kernel of this environment, in a given profile."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import nbformat

from utils.atomic import atomic_open


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

    # one thread, as under `make test`, so stored outputs are computed the way nbval recomputes them
    with _environment(COURSE_PROFILE=profile, OMP_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1"):
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
