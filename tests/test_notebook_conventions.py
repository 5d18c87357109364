"""Every notebook follows DESIGN §3: setup first, tagged exercises with checks, clean outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from utils.course.checks import load_chapter
from utils.course.notebooks.cells import checked_exercises, is_exercise

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATH = re.compile(r"(/root/|/tmp/|/work/|/home/[a-z]|[A-Z]:\\\\Users)")


def notebook_ids(paths):
    return [path.name for path in paths]


@pytest.fixture(params=SOLUTIONS, ids=notebook_ids(SOLUTIONS))
def solution(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_are_solutions():
    assert SOLUTIONS, "solutions/ holds no chapter notebooks"


def test_first_code_cell_calls_setup_notebook(solution):
    _, notebook = solution
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "setup_notebook(" in first_code.source


def test_title_and_objectives_come_first(solution):
    path, notebook = solution
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} ")
    assert "You will learn" in first.source


def test_exercises_are_announced_tagged_checked_and_registered(solution):
    path, notebook = solution
    chapter = int(path.name[:2])
    announced = re.findall(r"\*\*Exercise (\d+\.\d+)\*\* \((\d+) points?\)",
                           "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown"))
    checked = [exercise_id for cell in notebook.cells for exercise_id in checked_exercises(cell)]
    registered = {exercise.id: exercise for exercise in load_chapter(chapter)}
    assert len(announced) >= 3
    assert [exercise_id for exercise_id, _ in announced] == checked == list(registered)
    for exercise_id, points in announced:
        assert int(points) == registered[exercise_id].points, f"points of {exercise_id}"
    exercise_cells = [cell for cell in notebook.cells if is_exercise(cell)]
    assert len(exercise_cells) >= len(announced)
    for cell in exercise_cells:
        assert "### BEGIN SOLUTION" in cell.source


def test_solved_checks_say_correct(solution):
    _, notebook = solution
    for cell in notebook.cells:
        for exercise_id in checked_exercises(cell):
            text = "".join(output.get("text", "") for output in cell.outputs)
            assert f"Exercise {exercise_id}: correct" in text, f"stored output of check {exercise_id}"


def test_lesson_cells_have_run_without_errors(solution):
    _, notebook = solution
    for position, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {position} has not been executed"
        tags = cell.metadata.get("tags", [])
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert not errors or "raises-exception" in tags, f"cell {position} stored an error"


@pytest.mark.parametrize("folder", ["solutions", "chapters"])
def test_no_machine_paths_in_stored_outputs(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for position, cell in enumerate(notebook.cells):
            text = nbformat.writes(nbformat.v4.new_notebook(cells=[cell])) if cell.cell_type == "code" else ""
            match = MACHINE_PATH.search(text)
            assert match is None, f"{path.name}, cell {position}: machine path {match.group(0)!r}"


def test_every_figure_is_png(solution):
    _, notebook = solution
    for cell in notebook.cells:
        for output in getattr(cell, "outputs", []):
            assert "image/svg+xml" not in output.get("data", {}), "SVG outputs change every run"
