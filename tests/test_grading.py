"""`attn grade`: a class folder of correct, partial, blank and adversarial chapter-01 notebooks.

The adversarial notebooks are built here from the solution notebook (cells replaced or
added). They start from a lean copy without d2l (whose import takes most of a kernel's
start-up) so the whole folder grades in about two minutes on two cores.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import torch

from utils.course.checks.core import load_chapter
from utils.course.notebooks.grade_collect import OPAQUE_KEY, shippable
from utils.course.notebooks.grade_report import Report, write_table
from utils.course.notebooks.grade_worker import heavy_imports
from utils.course.notebooks.grading import Limits, _unship, grade_exercise
from utils.course.notebooks.sandbox import probe
from utils.course.notebooks.submissions import (
    chapter_from_name,
    chapter_from_notebook,
    find_submissions,
    inspect,
    read_notebook,
    unique_names,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_masked_softmax.ipynb"
CHAPTER = ROOT / "chapters" / "01_masked_softmax.ipynb"
EXERCISES = {exercise.id: exercise for exercise in load_chapter(1)}
FULL = sum(exercise.points for exercise in EXERCISES.values())  # 13
# CI (.ci/run) grades in the sandbox or fails; elsewhere sandboxed where bwrap works, else not
SANDBOX = "require" if os.environ.get("ATTN_REQUIRE_SANDBOX") == "1" else "auto" if probe() is None else "off"


# ---- building notebooks ------------------------------------------------------------------------
def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_index(notebook, startswith: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells)
                if cell.cell_type == "code" and cell.source.startswith(startswith))


def lean(notebook):
    """The notebook without d2l: its import line and the cells that compare with it."""
    notebook = copy.deepcopy(notebook)
    notebook.cells = [cell for cell in notebook.cells if "d2l." not in cell.source]
    setup = notebook.cells[code_index(notebook, "import matplotlib")]
    setup.source = setup.source.replace("from d2l import torch as d2l\n", "")
    return notebook


def with_cell(notebook, source: str, *, after: str | None = None):
    """A copy with a code cell added after the cell starting with ``after`` (default: at the end)."""
    notebook = copy.deepcopy(notebook)
    cell = nbformat.v4.new_code_cell(source)
    position = len(notebook.cells) if after is None else code_index(notebook, after) + 1
    notebook.cells.insert(position, cell)
    return notebook


def with_solution(notebook, name: str, body: str):
    """A copy whose exercise function ``name`` has ``body`` instead of its solution."""
    notebook = copy.deepcopy(notebook)
    cell = notebook.cells[code_index(notebook, f"def {name}(")]
    cell.source = cell.source.split("\n")[0] + "\n" + body
    return notebook


SETUP = "import matplotlib"  # the notebook's first code cell
BOMB = """def hog():
    blocks = []
    while True:
        blocks.append(bytearray(2**27))

hog()"""
TAMPER = """import dataclasses

import utils.course.checks.compare as compare
import utils.course.checks.core as core

core.load_chapter(1)
core._REGISTRY["1.1"] = dataclasses.replace(core._REGISTRY["1.1"], cases=())
core.judge = lambda *args, **kwargs: None
core.run_case = lambda exercise, answer, case: core.Outcome("ok", value=exercise.expected(case))
compare.compare_values = lambda *args, **kwargs: None


def check(exercise_id, answer):
    print(f"Exercise {exercise_id}: correct. All the points.")"""
VANDAL = """import os
import shutil

for name in os.listdir("."):
    shutil.rmtree(name) if os.path.isdir(name) else os.remove(name)
os.makedirs("utils/course/checks")
for name in ("utils/__init__.py", "utils/course/__init__.py", "utils/course/checks/__init__.py",
             "utils/course/checks/core.py"):
    with open(name, "w") as handle:
        handle.write("raise SystemExit('fake checks')\\n")"""


def build_class(folder: Path) -> dict[str, tuple[str, int]]:
    """Write the class folder; return file name -> (expected status, expected points)."""
    solution, chapter = read(SOLUTION), read(CHAPTER)
    base = lean(solution)
    notebooks = {
        "01_correct.ipynb": (solution, "ok", FULL),
        "01_partial.ipynb": (with_solution(solution, "my_masked_softmax",
                                           "    return torch.softmax(scores, dim=-1)"),
                             "cell-errors", FULL - EXERCISES["1.4"].points),
        "01_blank.ipynb": (chapter, "ok", 0),
        # still running at the cell limit: interrupted, the rest of the notebook runs
        "loop.ipynb": (with_cell(base, "while True:\n    pass", after=SETUP), "timeout", FULL),
        # swallows the interrupt: the kernel is killed, a second kernel skips the cell
        "stubborn.ipynb": (with_cell(base, "import time\n\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                                           "    except KeyboardInterrupt:\n        pass", after=SETUP),
                           "timeout", FULL),
        "sys_exit.ipynb": (with_cell(base, "import sys\n\nsys.exit(3)", after=SETUP), "cell-errors", FULL),
        "os_exit.ipynb": (with_cell(base, "import os\n\nos._exit(1)"), "kernel-died", FULL),
        "segfault.ipynb": (with_cell(base, "import ctypes\n\nctypes.string_at(0)", after=SETUP),
                           "kernel-died", FULL),
        "interrupt.ipynb": (with_cell(base, "raise KeyboardInterrupt", after=SETUP), "cell-errors", FULL),
        # 500 MB in 10 kB prints; on a loaded machine the flood may outlast the cell's time before
        # the output cap stops it, so both verdicts are accepted (see test_reports_say_what_happened)
        "chatty.ipynb": (with_cell(base, "for _ in range(50_000):\n    print('x' * 10_000)", after=SETUP),
                         "output-limit", FULL),
        "memory.ipynb": (with_cell(base, BOMB, after=SETUP), "cell-errors", FULL),
        "vandal.ipynb": (with_cell(base, VANDAL, after=SETUP), "ok", FULL),
        # the blank chapter with the checks patched and `check` redefined: still 0 points
        "tamper.ipynb": (with_cell(chapter, TAMPER, after=SETUP), "tampered", 0),
    }
    expected = {}
    for name, (notebook, status, points) in notebooks.items():
        nbformat.write(notebook, folder / name)
        expected[name] = (status, points)
    other = with_cell(lean(solution), 'check("2.1", my_masked_softmax)\ncheck("2.2", my_masked_softmax)')
    for cell in other.cells:
        cell.source = cell.source.replace('check("1.', 'check("2.')
    nbformat.write(other, folder / "01_other_chapter.ipynb")
    (folder / "notes.txt").write_text("not a notebook\n")
    (folder / "empty.ipynb").write_text("")
    (folder / "broken.ipynb").write_text('{"cells": [')
    for name in ("01_other_chapter.ipynb", "notes.txt", "empty.ipynb", "broken.ipynb"):
        expected[name] = ("invalid", None)
    return expected


def attn_grade(folder: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "utils.course.cli", "grade", str(folder), "--out", str(out), "--jobs", "2",
         "--timeout-cell", "20", "--timeout-notebook", "60", "--memory-limit", "2", "--max-output", "1",
         "--sandbox", SANDBOX],
        capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    expected = build_class(folder)
    out = tmp_path_factory.mktemp("grades")
    result = attn_grade(folder, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, out, expected, result


def table(out: Path) -> dict[str, dict]:
    with (out / "grades.csv").open(newline="") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def report(out: Path, name: str) -> dict:
    return json.loads((out / f"{Path(name).stem}.json").read_text())


# ---- the class folder --------------------------------------------------------------------------
def test_every_submission_gets_its_verdict_and_points(graded):
    _, out, expected, _ = graded
    rows = table(out)
    assert set(rows) == set(expected)
    for name, (status, points) in expected.items():
        row = rows[name]
        if name == "chatty.ipynb" and row["status"] == "timeout":
            status = "timeout"  # stopped by the clock before the cap: still graded, still reported
        if name == "memory.ipynb" and row["status"] == "kernel-died":
            # the MemoryError is reported (test_reports_say_what_happened); at the cap the kernel may
            # then die too (seen with the locked numpy 2.4): replaced, the rest of the notebook graded
            assert 0 < int(row["points"]) <= points, (name, row)
            continue
        assert row["status"] == status, (name, row)
        if points is None:
            assert row["points"] == "" and row["message"], (name, row)
        else:
            assert int(row["points"]) == points and int(row["max_points"]) == FULL, (name, row)
            assert (out / f"{Path(name).stem}.md").is_file()


def test_reports_say_what_happened(graded):
    _, out, _, result = graded
    events = {name: [(event["kind"], event["detail"]) for event in report(out, name)["events"]]
              for name in ("loop.ipynb", "stubborn.ipynb", "sys_exit.ipynb", "os_exit.ipynb",
                           "segfault.ipynb", "interrupt.ipynb", "chatty.ipynb", "memory.ipynb")}
    assert ("cell_timeout", "the cell ran past 20 s and was interrupted") in events["loop.ipynb"]
    assert any(kind == "cell_timeout" and "ignored the interrupt" in detail
               for kind, detail in events["stubborn.ipynb"])
    assert any(detail.startswith("SystemExit") for _, detail in events["sys_exit.ipynb"])
    assert any(kind == "kernel_died" and "exited with status 1" in detail
               for kind, detail in events["os_exit.ipynb"])
    assert any(kind == "kernel_died" and "signal 11" in detail for kind, detail in events["segfault.ipynb"])
    assert any(detail.startswith("KeyboardInterrupt") for _, detail in events["interrupt.ipynb"])
    assert any(kind in ("output_limit", "cell_timeout") for kind, _ in events["chatty.ipynb"])
    assert ("cell_error", "MemoryError (a kernel may use 2 GiB)") in [
        (kind, detail) for kind, detail in events["memory.ipynb"]]
    tampered = report(out, "tamper.ipynb")
    assert "utils.course.checks.core.judge was replaced or changed" in tampered["tampering"]
    assert "the notebook's `check` is not the course's check function" in tampered["tampering"]
    assert all(grade["verdict"] == "not implemented" for grade in tampered["exercises"])
    assert [note for note in tampered["tampering"] if "registered" in note] == [
        "the registered exercise 1.1 was changed"]
    assert "tampered with the checks" in (out / "tamper.md").read_text()
    # one summary line per student on the terminal
    for name in ("01_correct.ipynb", "notes.txt", "segfault.ipynb"):
        assert name in result.stdout


def test_partial_report_names_the_first_failing_case(graded):
    _, out, _, _ = graded
    grades = {grade["id"]: grade for grade in report(out, "01_partial.ipynb")["exercises"]}
    assert grades["1.4"]["verdict"] == "failed" and grades["1.4"]["points"] == 0
    assert grades["1.4"]["failed_case"] == EXERCISES["1.4"].cases[0].label
    assert "your weights" in grades["1.4"]["reason"]
    assert all(grades[other]["verdict"] == "passed" for other in ("1.1", "1.2", "1.3"))


def test_invalid_files_get_a_clear_error(graded):
    _, out, _, _ = graded
    rows = table(out)
    assert rows["notes.txt"]["message"].startswith("not a notebook")
    assert rows["empty.ipynb"]["message"] == "empty file"
    assert rows["broken.ipynb"]["message"].startswith("invalid JSON")
    assert rows["01_other_chapter.ipynb"]["message"] == "this notebook is from chapter 02, not chapter 01"


def test_regrading_gives_the_same_table(graded, tmp_path):
    """A second run (over a sample of the class, to keep the test short) writes the same rows."""
    folder, out, _, _ = graded
    # the cell-timeout kinds are left out here: each costs a full time limit, and their
    # verdicts are already asserted in test_every_submission_gets_its_verdict_and_points
    sample = ["01_correct.ipynb", "01_partial.ipynb", "01_blank.ipynb", "os_exit.ipynb",
              "tamper.ipynb", "broken.ipynb", "notes.txt"]
    (tmp_path / "class").mkdir()
    for name in sample:
        shutil.copyfile(folder / name, tmp_path / "class" / name)
    again = attn_grade(tmp_path / "class", tmp_path / "again")
    assert again.returncode == 0, again.stdout + again.stderr
    first = table(out)
    assert table(tmp_path / "again") == {name: first[name] for name in sample}
    for name in ("01_partial", "tamper"):
        assert (tmp_path / "again" / f"{name}.json").read_text() == (out / f"{name}.json").read_text()


@pytest.mark.parametrize("sealed", [False, pytest.param(True, marks=pytest.mark.skipif(
    probe() is not None and os.environ.get("ATTN_REQUIRE_SANDBOX") != "1", reason="no grading sandbox here"))])
def test_a_worker_past_the_hard_limit_is_killed_with_its_kernel(tmp_path, monkeypatch, sealed):
    import utils.course.notebooks.grading as grading

    nbformat.write(with_cell(lean(read(SOLUTION)), "import time\n\ntime.sleep(600)", after=SETUP),
                   tmp_path / "01_slow.ipynb")
    token = "0123456789abcdef01234567"
    monkeypatch.setattr(grading.secrets, "token_hex", lambda size: token)
    monkeypatch.setattr(Limits, "hard_seconds", lambda self, exercises: 30)
    reports = grading.grade([tmp_path / "01_slow.ipynb"], out=tmp_path / "out", jobs=1, progress=False,
                            limits=Limits(timeout_cell=300, timeout_notebook=600, sandbox=sealed))
    assert (reports[0].status, reports[0].points) == ("killed", 0)
    assert "hard limit of 30 s" in reports[0].message
    tagged = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if f"ATTN_GRADE_TOKEN={token}".encode() in (entry / "environ").read_bytes():
                tagged.append(entry.name)
        except OSError:
            continue
    assert tagged == []
    assert list(Path(tempfile.gettempdir()).glob(f"attn-grade-work-{token}-*")) == []


def test_nothing_to_grade_and_bad_limits_are_usage_errors(tmp_path, capsys):
    import argparse

    import utils.course.notebooks.grading as grading

    parser = argparse.ArgumentParser()
    grading.configure(parser)
    assert grading.run(parser.parse_args([str(tmp_path), "--out", str(tmp_path / "out")])) == 2
    assert "no files to grade" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses it, naming the option
        parser.parse_args([str(tmp_path), "--jobs", "0"])
    assert "argument --jobs: must be a whole number >= 1; got 0" in capsys.readouterr().err


# ---- the pieces --------------------------------------------------------------------------------
def test_chapter_from_the_file_name():
    assert chapter_from_name("01_masked_softmax.ipynb") == 1
    assert chapter_from_name("05_multihead.ipynb") == 5
    assert chapter_from_name("alice.ipynb") is None
    assert chapter_from_name("1_short.ipynb") is None


def test_chapter_from_the_notebook():
    notebook = read(CHAPTER)
    assert chapter_from_notebook(notebook) == 1
    no_checks = copy.deepcopy(notebook)
    no_checks.cells = [cell for cell in no_checks.cells if "check(" not in cell.source]
    assert chapter_from_notebook(no_checks) == 1  # from the "# 01 · ..." title
    no_checks.cells = [cell for cell in no_checks.cells if cell.cell_type == "code"]
    assert chapter_from_notebook(no_checks) is None
    no_checks.metadata["attn"] = {"chapter": 3}
    assert chapter_from_notebook(no_checks) == 3


def test_heavy_imports_are_warmed_before_the_cells():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nimport matplotlib.pyplot as plt, os\nfrom d2l import torch as d2l"),
        nbformat.v4.new_code_cell("import torch\nfrom utils import check\nfrom torch.nn import functional as F"),
        nbformat.v4.new_code_cell("this is not Python"),
    ])
    assert heavy_imports(notebook) == ["matplotlib.pyplot", "d2l", "d2l.torch", "torch", "torch.nn",
                                       "torch.nn.functional"]


def test_inspect_decides_the_chapter(tmp_path):
    notebook = read(CHAPTER)
    nbformat.write(notebook, tmp_path / "alice.ipynb")
    assert inspect(tmp_path / "alice.ipynb").chapter == 1  # from its check cells
    assert inspect(tmp_path / "alice.ipynb", chapter=1).problem is None
    refused = inspect(tmp_path / "alice.ipynb", chapter=2)
    assert refused.problem == "this notebook is from chapter 01, not chapter 02"
    nbformat.write(notebook, tmp_path / "03_misnamed.ipynb")
    assert inspect(tmp_path / "03_misnamed.ipynb").problem == "this notebook is from chapter 01, not chapter 03"
    anonymous = copy.deepcopy(notebook)
    anonymous.cells = [cell for cell in anonymous.cells if cell.cell_type == "code" and "check(" not in cell.source]
    nbformat.write(anonymous, tmp_path / "bob.ipynb")
    assert "pass --chapter" in inspect(tmp_path / "bob.ipynb").problem
    assert inspect(tmp_path / "bob.ipynb", chapter=1).chapter == 1
    missing = inspect(tmp_path / "bob.ipynb", chapter=9, known_chapters=lambda n: n == 1)
    assert missing.problem == "chapter 09 has no exercises to grade"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.txt", "{}", "not a notebook: expected a .ipynb file, got .txt"),
    ("a.ipynb", "", "empty file"),
    ("a.ipynb", "{not json", "invalid JSON (line 1: Expecting property name enclosed in double quotes)"),
    ("a.ipynb", "[1, 2]", "not a Jupyter notebook: the JSON has no 'cells'"),
    ("a.ipynb", '{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}',
     "a notebook in the old nbformat 3 (cells inside 'worksheets'): convert it with `jupyter nbconvert"),
    ("a.ipynb", '{"cells": "many"}', "not a valid Jupyter notebook"),
    ("a.ipynb", json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# hi")])),
     "empty notebook: no code cells"),
])
def test_invalid_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_notebook(path)
    assert str(error.value).startswith(message)
    assert inspect(path, chapter=1).problem.startswith(message)


def test_find_submissions_and_unique_names(tmp_path):
    for relative in ("alice/01_masked_softmax.ipynb", "bob/01_masked_softmax.ipynb", "carol.ipynb",
                     ".hidden.ipynb", "alice/.ipynb_checkpoints/x.ipynb", "grades/old.json"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}")
    found = find_submissions([tmp_path, tmp_path / "carol.ipynb"], exclude=tmp_path / "grades")
    assert [file for _, file in found] == [
        "alice/01_masked_softmax.ipynb", "bob/01_masked_softmax.ipynb", "carol.ipynb"]
    assert unique_names([path for path, _ in found]) == [
        "alice-01_masked_softmax", "bob-01_masked_softmax", "carol"]


def test_outcomes_travel_as_plain_data_only():
    import numpy as np

    value = (torch.ones(2), [1, 2.5, "x", None], {"k": np.float64(0.5)}, np.zeros(2), torch.Size([2, 3]))
    shipped = shippable(value)
    assert shipped[2] == {"k": 0.5} and type(shipped[2]["k"]) is float
    assert shipped[3][OPAQUE_KEY] == "ndarray" and shipped[4] == (2, 3)
    back = _unship(shipped)
    assert type(back[3]).__name__ == "ndarray" and torch.equal(back[0], torch.ones(2))


def _entry(record: dict) -> dict:
    import base64
    import io

    buffer = io.BytesIO()
    torch.save(record, buffer)
    return {"status": "collected", "data": base64.b64encode(buffer.getvalue()).decode()}


def test_the_grader_judges_what_came_back():
    exercise = EXERCISES["1.1"]
    right = [{"status": "ok", "value": exercise.expected(case), "error": ""} for case in exercise.cases]
    grade, _ = grade_exercise(exercise, _entry({"defined": True, "outcomes": right}), Limits())
    assert (grade.verdict, grade.points) == ("passed", exercise.points)
    # a forged status, a value of the wrong kind, missing cases after a time-out
    forged = [{"status": "correct!", "value": None, "error": ""}]
    assert grade_exercise(exercise, _entry({"defined": True, "outcomes": forged}), Limits())[0].points == 0
    odd = [{"status": "ok", "value": shippable(np_array()), "error": ""}]
    grade, _ = grade_exercise(exercise, _entry({"defined": True, "outcomes": odd}), Limits())
    assert grade.reason == "your result should be a torch.Tensor; got ndarray"
    grade, _ = grade_exercise(exercise, {**_entry({"defined": True, "outcomes": right[:1]}), "status": "timeout"},
                              Limits(timeout_cell=7))
    assert (grade.failed_case, grade.reason) == (exercise.cases[1].label, "your code ran past the 7 s limit")
    grade, _ = grade_exercise(exercise, {"status": "not_collected", "detail": "lost"}, Limits())
    assert (grade.verdict, grade.reason) == ("not graded", "lost")
    # a pickle of an arbitrary object is refused by weights_only
    import base64
    import pickle

    evil = {"status": "collected", "data": base64.b64encode(pickle.dumps(Limits())).decode()}
    assert grade_exercise(exercise, evil, Limits())[0].reason.startswith("the kernel's results could not be read")


def np_array():
    import numpy as np

    return np.zeros(3)


def test_table_has_a_row_per_submission(tmp_path):
    write_table([Report(file="a.ipynb", name="a", chapter=None, status="invalid", message="empty file")],
                tmp_path / "grades.csv")
    assert (tmp_path / "grades.csv").read_text().splitlines() == [
        "file,status,points,max_points,message", "a.ipynb,invalid,,,empty file"]


# ---- the sandbox's refusal and the forbidden calls (no kernel) -------------------------------------
def test_without_bwrap_grading_is_refused_unless_sandbox_off(tmp_path, monkeypatch, capsys):
    import argparse

    import utils.course.notebooks.grading as grading
    import utils.course.notebooks.sandbox as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.probe.cache_clear()
    try:
        assert "apt-get install bubblewrap" in sandbox.probe()
        assert sandbox.resolve("off") is False
        parser = argparse.ArgumentParser()
        grading.configure(parser)
        nbformat.write(read(CHAPTER), tmp_path / "01_blank.ipynb")
        for mode in ("auto", "require"):
            arguments = [str(tmp_path / "01_blank.ipynb"), "--out", str(tmp_path / "out"), "--sandbox", mode]
            assert grading.run(parser.parse_args(arguments)) == 2
            message = capsys.readouterr().err.strip()
            assert len(message.splitlines()) == 1 and "apt-get install bubblewrap" in message
            assert ("--sandbox off" in message) == (mode == "auto")
        assert not (tmp_path / "out").exists()
    finally:
        sandbox.probe.cache_clear()


def test_forbidden_uses_sees_identity_wrappers_subclasses_and_references():
    import functools

    from torch.nn import functional

    from utils.attention.dot_product import DotProductAttention
    from utils.attention.masking import masked_softmax
    from utils.course.checks.ch01 import reference_causal_masked_softmax
    from utils.course.notebooks.grade_collect import forbidden_uses

    forbidden = {"utils.attention.masking.masked_softmax": [masked_softmax],
                 "utils.attention.dot_product.DotProductAttention": [DotProductAttention],
                 "torch.nn.functional.scaled_dot_product_attention": [functional.scaled_dot_product_attention]}
    space = {"masked_softmax": masked_softmax, "torch": torch, "F": functional,
             "reference_causal_masked_softmax": reference_causal_masked_softmax}
    exec("def wrapper(s, v):\n    return masked_softmax(s, v)\n"
         "def _helper(s, v):\n    return masked_softmax(s, v)\n"
         "def indirect(s, v):\n    return _helper(s, v) * 1\n"
         "def fused(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)\n"
         "def honest(s, v):\n    return torch.softmax(s, dim=-1)\n"
         "def cheat(s, v):\n    return reference_causal_masked_softmax(s, v)\n", space)
    subclass = type("DotAttention", (DotProductAttention,), {"__module__": "__main__"})
    cases = {
        "identity": (masked_softmax, ["utils.attention.masking.masked_softmax"]),
        "wrapper": (space["wrapper"], ["utils.attention.masking.masked_softmax"]),
        "helper": (space["indirect"], ["utils.attention.masking.masked_softmax"]),
        "partial": (functools.partial(masked_softmax), ["utils.attention.masking.masked_softmax"]),
        "fused": (space["fused"], ["torch.nn.functional.scaled_dot_product_attention"]),
        "subclass": (subclass, ["utils.attention.dot_product.DotProductAttention"]),
        "reference": (space["cheat"], ["utils.course.checks.ch01.reference_causal_masked_softmax"]),
        "honest": (space["honest"], []),
    }
    for name, (answer, expected) in cases.items():
        assert forbidden_uses(answer, forbidden) == expected, name


def test_the_report_names_what_the_sandbox_denied():
    from utils.course.notebooks.grade_report import blocked_by_sandbox

    events = [{"kind": "cell_error", "cell": 2, "cell_title": "open(...)",
               "detail": "FileNotFoundError: [Errno 2] No such file or directory: '/home/ta/solutions/01.ipynb'"},
              {"kind": "cell_error", "cell": 3, "detail": "FileNotFoundError: [Errno 2] No such file or "
                                                          "directory: '/tmp/attn-grade-work-ab12/data.csv'"},
              {"kind": "cell_error", "cell": 4, "detail": "ConnectionRefusedError: [Errno 111] Connection refused"},
              {"kind": "cell_error", "cell": 5, "detail": "BlockingIOError: [Errno 11] Resource temporarily unavailable"},
              {"kind": "cell_error", "cell": 6, "detail": "NameError: name 'x' is not defined"},
              {"kind": "cell_timeout", "cell": 7, "detail": "PermissionError in a timeout's text"}]
    blocked = blocked_by_sandbox(events)
    assert len(blocked) == 3  # the working copy's own missing file, the NameError and the timeout are not
    assert blocked[0].startswith("cell 3 (`open(...)`): FileNotFoundError") and "outside the sandbox" in blocked[0]
    assert "network connection" in blocked[1] and "cap on processes" in blocked[2]


# ---- chapter 08 ----------------------------------------------------------------------------------
def exercises_only(notebook):
    """The title, the setup cell and the exercises section: the graded part, without the training."""
    notebook = copy.deepcopy(notebook)
    start = next(i for i, cell in enumerate(notebook.cells) if cell.source.startswith("## Exercises"))
    notebook.cells = notebook.cells[:2] + notebook.cells[start:]
    return notebook


def test_chapter_08_is_graded_with_its_forbidden_calls(tmp_path):
    solved = exercises_only(read(ROOT / "solutions" / "08_transformer.ipynb"))
    folder = tmp_path / "class"
    folder.mkdir()
    nbformat.write(solved, folder / "08_solved.ipynb")
    cheat = with_solution(solved, "label_smoothed_loss", "    import torch.nn.functional as F\n"
                          "    return F.cross_entropy(logits, targets, ignore_index=pad_id, label_smoothing=epsilon)")
    nbformat.write(cheat, folder / "08_cheat.ipynb")
    result = attn_grade(folder, tmp_path / "grades")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table(tmp_path / "grades")
    full = sum(exercise.points for exercise in load_chapter(8))
    assert full == 11
    # every exercise's verdict and reason in the message (8.4 once failed now and then here: the two
    # notebooks' expected values, judged in threads, raced for torch's global generator; see
    # tests/test_checks.py::test_expected_values_do_not_change_when_threads_compute_them_at_once)
    verdicts = {name: [(g["id"], g["verdict"], g["points"], g.get("reason"))
                       for g in report(tmp_path / "grades", name)["exercises"] if g["verdict"] != "passed"]
                for name in ("08_solved.ipynb", "08_cheat.ipynb")}
    assert [(rows[name]["status"], int(rows[name]["points"]), int(rows[name]["max_points"]))
            for name in ("08_solved.ipynb", "08_cheat.ipynb")] == [("ok", full, full), ("ok", full - 3, full)], verdicts
    grades = {grade["id"]: grade for grade in report(tmp_path / "grades", "08_cheat.ipynb")["exercises"]}
    assert grades["8.3"]["verdict"] == "forbidden" and grades["8.3"]["points"] == 0
