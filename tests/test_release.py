"""`attn release`: exercise stubs, and chapters/ equal to what release writes from solutions/."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from utils.course.notebooks.release import check_release, differences, release_notebook, stub_source


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
    result = subprocess.run([sys.executable, "-m", "utils.course.cli", "release", "--check"], cwd=root,
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


def _attn(*argv):
    from utils.course.cli import main

    return main(list(argv))


def test_unreadable_or_unpaired_solutions_are_one_line_errors(tmp_path, capsys):
    solutions, chapters = tmp_path / "solutions", tmp_path / "chapters"
    solutions.mkdir()
    (solutions / "01_broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    chapters.mkdir()
    (chapters / "01_broken.ipynb").write_text("{}", encoding="utf-8")
    assert _attn("release", "--check", "--solutions", str(solutions), "--chapters", str(chapters)) == 2
    err = capsys.readouterr().err
    assert "attn release: error:" in err and "01_broken.ipynb is not a readable notebook" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    (solutions / "01_broken.ipynb").unlink()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def f():\n    return 1\n    ### END SOLUTION", metadata={"tags": ["exercise"]})])
    nbformat.write(notebook, solutions / "02_unpaired.ipynb")
    assert _attn("release", "--solutions", str(solutions), "--chapters", str(chapters)) == 2
    err = capsys.readouterr().err
    assert "02_unpaired.ipynb, cell 0 is tagged 'exercise' but has no '### BEGIN SOLUTION' line" in err


def test_grade_out_that_is_a_file_is_refused(tmp_path, capsys):
    report = tmp_path / "grades.csv"
    report.write_text("not a folder")
    assert _attn("grade", "--out", str(report), str(tmp_path)) == 2
    assert "--out" in capsys.readouterr().err


def test_doctor_reports_a_damaged_lock_instead_of_a_traceback(tmp_path, monkeypatch):
    from utils.course import doctor

    (tmp_path / "uv.lock").write_text("version = 1\n[[package]\nname = ", encoding="utf-8")
    monkeypatch.setattr(doctor, "PROJECT_ROOT", tmp_path)
    lines, problems = doctor.report()
    assert "uv.lock is damaged" in problems
    assert any("is not valid TOML" in line and "git checkout uv.lock" in line for line in lines)
