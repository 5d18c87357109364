"""A notebook opened in a Jupyter that lacks the course says, in one line, what to run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "chapters").glob("*.ipynb"))


def guard(path: Path) -> str:
    """The ``try: ... except ModuleNotFoundError`` block of the notebook's first code cell."""
    cell = next(cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code")
    lines = "".join(cell["source"]).split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("try:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("    raise ModuleNotFoundError"))
    return "\n".join(lines[start : end + 1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_without_the_course_the_first_cell_says_what_to_run(path, tmp_path):
    # -S: no site-packages, so neither utils nor d2l can be imported (as in a kernel without the course)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-S", "-c", guard(path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: No module named 'd2l'") or \
        last.startswith("ModuleNotFoundError: No module named 'utils'"), last
    assert "run `pip install -e COURSE_FOLDER`" in last and "restart the kernel" in last
    assert "During handling" not in result.stderr  # `from None`: one error, not a chain
