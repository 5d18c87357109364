"""Tiered hints: none gives the solution away; check() shows the first, hint() the rest."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

import utils
from utils.course.checks import ExerciseFailed, check, core, get_exercise, hint, load_chapter
from utils.course.notebooks.cells import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    checked_exercises,
    is_exercise,
)
from utils.course.notebooks.grade_report import write_markdown
from utils.course.notebooks.grading import Limits, build_report, grade_exercise
from utils.course.notebooks.release import stub_source
from utils.course.notebooks.submissions import Submission

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
MIN_LINE = 12  # solution lines with fewer non-space characters are too generic to count
MIN_FRAGMENT = 20  # no piece of a solution line this long may appear in a hint
TRIVIAL = re.compile(r"^(pass|return \w+|(def|class) .*|super\(\)\.__init__\(\))$")
# code in a hint, whatever it computes: a call with arguments, a subscript, a matrix product
CODE = re.compile(r"\w\(\s*[^\s)]|\w\[|\s@\s")


def all_exercises():
    return [exercise for path in SOLUTIONS for exercise in load_chapter(int(path.name[:2]))]


def squash(text: str) -> str:
    """Code compared without any whitespace: ``a @ b.T`` and ``a@b.T`` are the same line."""
    return re.sub(r"\s+", "", text)


def solution_lines(source: str) -> list[str]:
    """The code lines between the solution markers, comments dropped."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line:
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif inside:
            code = re.sub(r"(^|\s)#.*$", "", line).strip()
            if code:
                lines.append(code)
    return lines


def exercise_cells() -> dict[str, tuple[list[str], str]]:
    """For every exercise id: its solution lines, and what the learner sees anyway (prompt and stub).

    An exercise cell belongs to the exercise whose ``target`` it defines, and the check cell that
    follows it must check that exercise.
    """
    found: dict[str, tuple[list[str], str]] = {}
    for path in SOLUTIONS:
        notebook = nbformat.read(path, as_version=4)
        exercises = load_chapter(int(path.name[:2]))
        for position, cell in enumerate(notebook.cells):
            if not is_exercise(cell):
                continue
            owners = [ex for ex in exercises
                      if re.search(rf"^\s*(def|class)\s+{re.escape(ex.target)}\b", cell.source, re.M)]
            assert len(owners) == 1, f"{path.name}, cell {position}: defines no (or several) exercise targets"
            exercise = owners[0]
            following = next(c for c in notebook.cells[position + 1:] if c.cell_type == "code")
            assert exercise.id in checked_exercises(following), \
                f"{path.name}, cell {position}: the next code cell does not check {exercise.id}"
            prompt, before = [], position - 1
            while before >= 0 and notebook.cells[before].cell_type == "markdown":
                prompt.insert(0, notebook.cells[before].source)
                before -= 1
            visible = "\n".join([*prompt, stub_source(cell.source)])
            assert exercise.id not in found, f"{exercise.id} has two exercise cells"
            found[exercise.id] = (solution_lines(cell.source), visible)
    return found


def leaks(lines: list[str], visible: str, text: str) -> list[str]:
    """The solution code in ``text``: whole lines, or fragments the learner does not already see."""
    found = []
    squashed_text, squashed_visible = squash(text), squash(visible)
    for line in lines:
        code = squash(line)
        if len(code) < MIN_LINE or TRIVIAL.match(line) or code in squashed_visible:
            continue
        if code in squashed_text:
            found.append(line)
            continue
        for start in range(len(code) - MIN_FRAGMENT + 1):
            fragment = code[start:start + MIN_FRAGMENT]
            if fragment in squashed_text and fragment not in squashed_visible:
                found.append(f"{fragment!r} (from `{line}`)")
                break
    return found


@pytest.fixture(autouse=True)
def fresh_hint_walk():
    core._HINTS_SHOWN.clear()
    yield
    core._HINTS_SHOWN.clear()


# ---- the hints themselves ----------------------------------------------------------------------
def test_every_exercise_has_a_solution_cell():
    cells = exercise_cells()
    assert sorted(cells) == sorted(exercise.id for exercise in all_exercises())
    for exercise_id, (lines, _) in cells.items():
        assert lines, f"{exercise_id}: no code between the solution markers"


def test_no_hint_contains_solution_code():
    cells = exercise_cells()
    offending = []
    for exercise in all_exercises():
        lines, visible = cells[exercise.id]
        for tier, text in enumerate(exercise.hints, start=1):
            for leak in leaks(lines, visible, text):
                offending.append(f"{exercise.id} tier {tier}: {leak}")
    assert not offending, "hints that give the solution away:\n" + "\n".join(offending)


def test_hints_are_words_not_code():
    """Stricter than the solution lines: no tier holds a call, an index or a product in code form."""
    found = [f"{exercise.id} tier {tier}: {match.group(0)!r} in {text!r}"
             for exercise in all_exercises() for tier, text in enumerate(exercise.hints, start=1)
             for match in [CODE.search(text)] if match]
    assert not found, "hints written as code:\n" + "\n".join(found)


def test_the_leak_detector_catches_solution_code():
    lines = ["scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)", "return x", "pass"]
    visible = "def f(queries, keys):\n    raise NotImplementedError()"
    assert leaks(lines, visible, "scores=torch.bmm(queries,keys.transpose(1,2))/math.sqrt(d)")
    assert leaks(lines, visible, "use torch.bmm(queries, keys.transpose(1, 2)) here")
    assert not leaks(lines, visible, "the scores must be (batch, queries, keys): which operand is "
                                     "transposed? return x, then pass")
    # what the prompt or stub already shows is no leak
    assert not leaks(["self.attention_weights = weights"], "store self.attention_weights", "self.attention_weights")


def test_every_exercise_has_two_or_more_tiers():
    for exercise in all_exercises():
        assert isinstance(exercise.hints, tuple) and len(exercise.hints) >= 2, exercise.id
        for text in exercise.hints:
            assert isinstance(text, str) and text.strip() == text and text, exercise.id


def test_hints_must_be_a_tuple_of_strings():
    with pytest.raises(TypeError, match="hints must be a tuple of strings"):
        core.Exercise(id="9.1", title="t", points=1, target="f", cases=(), reference=None,
                      hints="one string")
    with pytest.raises(ValueError, match="empty"):
        core.Exercise(id="9.1", title="t", points=1, target="f", cases=(), reference=None,
                      hints=("fine", " "))


# ---- check() and hint() ------------------------------------------------------------------------
def _wrong_length_mask(valid_lens, num_keys):
    return torch.arange(num_keys) <= valid_lens.unsqueeze(-1)  # one position too many


def test_a_wrong_answer_shows_the_first_tier_only():
    exercise = get_exercise("1.1")
    with pytest.raises(ExerciseFailed) as failure:
        check("1.1", _wrong_length_mask)
    message = str(failure.value)
    assert message.startswith(f"Exercise 1.1: not yet. On case {exercise.cases[0].label}: ")
    assert message.endswith(f". Hint: {exercise.hints[0]} (more: hint(\"1.1\"))")
    assert all(text not in message for text in exercise.hints[1:])


def test_correct_and_not_implemented_messages_are_unchanged(capsys):
    from utils.attention import length_mask

    check("1.1", length_mask)
    assert capsys.readouterr().out == "Exercise 1.1: correct (4 cases, 2 of them hidden). 2 points.\n"

    def stub(*args):
        raise NotImplementedError()

    check("1.1", stub)
    assert capsys.readouterr().out == (
        "Exercise 1.1: not implemented yet. Replace `raise NotImplementedError` in the cell above "
        "with your code, run it, then run this cell again.\n")


def test_hint_walks_the_tiers_then_points_to_the_solution(capsys):
    exercise = get_exercise("2.3")
    count = len(exercise.hints)
    for tier, text in enumerate(exercise.hints, start=1):
        assert hint("2.3") is None
        assert capsys.readouterr().out == f"Exercise 2.3, hint {tier} of {count}: {text}\n"
    hint("2.3")
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise 2.3: no more hints (all {count} shown).")
    assert "solutions/02_dot_product_attention.ipynb" in out
    hint("2.3")  # and it stays there
    assert capsys.readouterr().out == out
    # the walk of one exercise does not move another's
    hint("2.1")
    assert capsys.readouterr().out.startswith("Exercise 2.1, hint 1 of ")


def test_a_given_tier_and_the_walk_from_there(capsys):
    exercise = get_exercise("1.4")
    hint("1.4", tier=2)
    assert capsys.readouterr().out == f"Exercise 1.4, hint 2 of {len(exercise.hints)}: {exercise.hints[1]}\n"
    hint("1.4", tier=1)
    hint("1.4")
    assert capsys.readouterr().out.splitlines()[-1].startswith("Exercise 1.4, hint 2 of ")


def test_after_a_failed_check_hint_goes_on_to_tier_two(capsys):
    with pytest.raises(ExerciseFailed):
        check("1.1", _wrong_length_mask)
    hint("1.1")
    assert capsys.readouterr().out.startswith("Exercise 1.1, hint 2 of ")


@pytest.mark.parametrize(("tier", "message"), [
    (0, r"tier must be a whole number from 1 to \d for exercise 1\.2; got 0"),
    (9, r"tier must be a whole number from 1 to \d for exercise 1\.2; got 9"),
    ("2", r"tier must be a whole number from 1 to \d for exercise 1\.2; got '2'"),
    (True, r"tier must be a whole number from 1 to \d for exercise 1\.2; got True"),
])
def test_bad_tiers_are_clear_errors(tier, message):
    with pytest.raises(ValueError, match=message):
        hint("1.2", tier=tier)


@pytest.mark.parametrize(("bad_id", "message"), [("2", "exercise_id must look like '1.2'"),
                                                  ("2.9", "no exercise '2.9'; chapter 2 has 2.1, 2.2, 2.3"),
                                                  ("42.1", "chapter 42 has no exercises")])
def test_bad_ids_are_clear_errors(bad_id, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        hint(bad_id)


def test_hint_is_exported_lazily_from_utils():
    assert utils.hint is hint and "hint" in utils.__all__


# ---- the grader's report -----------------------------------------------------------------------
def _entry(record: dict) -> dict:
    import base64
    import io

    buffer = io.BytesIO()
    torch.save(record, buffer)
    return {"status": "collected", "data": base64.b64encode(buffer.getvalue()).decode()}


def test_the_grader_reports_the_failing_case_and_the_first_tier_only(tmp_path):
    exercise = get_exercise("1.1")
    wrong = [{"status": "ok", "value": _wrong_length_mask(*case.make()), "error": ""}
             for case in exercise.cases]
    grade, _ = grade_exercise(exercise, _entry({"defined": True, "outcomes": wrong}), Limits())
    assert (grade.verdict, grade.failed_case, grade.hint) == ("failed", exercise.cases[0].label,
                                                               exercise.hints[0])
    submission = Submission(path=tmp_path / "a.ipynb", file="a.ipynb", name="a", chapter=1)
    report = build_report(submission, [exercise], {"exercises": {"1.1": _entry(
        {"defined": True, "outcomes": wrong})}, "events": []}, Limits())
    write_markdown(report, tmp_path / "a.md")
    text = (tmp_path / "a.md").read_text()
    assert f"failed on case {exercise.cases[0].label}" in text
    assert f"Hint: {exercise.hints[0]}" in text
    assert all(tier not in text for tier in exercise.hints[1:])
    # a passing exercise has no hint
    right = [{"status": "ok", "value": exercise.expected(case), "error": ""} for case in exercise.cases]
    grade, _ = grade_exercise(exercise, _entry({"defined": True, "outcomes": right}), Limits())
    assert grade.hint == ""
