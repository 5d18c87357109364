"""`attn release`: exercise stubs, and chapters/ equal to what release writes from solutions/."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from utils.notebooks.release import check_release, differences, release_notebook, stub_source


def test_stub_keeps_the_signature_and_indentation():
    source = 'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n'
    assert stub_source(source) == 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'


def test_stub_replaces_every_block_and_keeps_code_between():
    source = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nprint(a)\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION"
    stubbed = stub_source(source)
    assert stubbed.count("raise NotImplementedError()") == 2 and "print(a)" in stubbed
    assert "a = 1" not in stubbed and "b = 2" not in stubbed


@pytest.mark.parametrize("source", ["x = 1", "### BEGIN SOLUTION\nx = 1\n"])
def test_malformed_exercise_cells_are_errors(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        stub_source(source, where="test cell")


def test_chapters_are_what_release_writes(root):
    problems = check_release(root / "solutions", root / "chapters")
    assert problems == []


def test_release_check_catches_an_edited_chapter(root, tmp_path):
    solution = nbformat.read(root / "solutions" / "01_masked_softmax.ipynb", as_version=4)
    chapter = nbformat.read(root / "chapters" / "01_masked_softmax.ipynb", as_version=4)
    exercise = next(cell for cell in chapter.cells if "exercise" in cell.metadata.get("tags", []))
    exercise.source = exercise.source.replace("raise NotImplementedError()", "pass")
    assert any("source differs" in problem for problem in differences(solution, chapter, name="01"))


def test_released_exercises_hide_the_solution(root):
    solution = nbformat.read(root / "solutions" / "01_masked_softmax.ipynb", as_version=4)
    released = release_notebook(solution)
    for cell in released.cells:
        assert "BEGIN SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == []


def test_attn_release_check_exit_status(root):
    result = subprocess.run([sys.executable, "-m", "utils.cli", "release", "--check"], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_check_ignores_cells_whose_output_may_vary(root):
    solution = nbformat.read(root / "solutions" / "01_masked_softmax.ipynb", as_version=4)
    chapter = nbformat.read(root / "chapters" / "01_masked_softmax.ipynb", as_version=4)
    lesson = next(index for index, cell in enumerate(chapter.cells)
                  if cell.cell_type == "code" and cell.outputs and "exercise" not in cell.metadata.get("tags", []))
    chapter.cells[lesson].outputs = [nbformat.v4.new_output("stream", name="stdout", text="took 1.23 s\n")]
    assert any("output differs" in problem for problem in differences(solution, chapter, name="01"))
    for notebook in (solution, chapter):
        notebook.cells[lesson].metadata["tags"] = ["nbval-ignore-output"]
    assert differences(solution, chapter, name="01") == []
