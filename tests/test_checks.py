"""The exercise checker: verdicts, hidden cases, stubs, mutation, and every chapter's references."""

from __future__ import annotations

import importlib
import pkgutil
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
import torch

import utils.course.checks
from utils.course.checks import ExerciseFailed, check, get_exercise, judge, load_chapter, run_case


def chapters_with_checks() -> list[int]:
    return sorted(int(info.name[2:]) for info in pkgutil.iter_modules(utils.course.checks.__path__)
                  if info.name.startswith("ch") and info.name[2:].isdigit())


@pytest.mark.parametrize("chapter", chapters_with_checks())
def test_every_reference_passes_its_own_cases(chapter):
    exercises = load_chapter(chapter)
    assert len(exercises) >= 3, f"chapter {chapter} needs at least three exercises"
    for exercise in exercises:
        assert any(case.hidden for case in exercise.cases), f"{exercise.id} has no hidden case"
        assert any(not case.hidden for case in exercise.cases), f"{exercise.id} shows no case"
        for case in exercise.cases:
            assert judge(exercise, case, run_case(exercise, exercise.reference, case)) is None


@pytest.mark.parametrize("chapter", chapters_with_checks())
def test_exercises_are_numbered_in_order_and_points_never_fall(chapter):
    """Difficulty rises within a chapter and the points reflect it: N.k+1 is worth at least N.k.

    The notebooks present the exercises in this order: ``test_notebook_conventions`` checks
    that their headings and check cells come in id order.
    """
    exercises = load_chapter(chapter)
    assert [exercise.id for exercise in exercises] == [f"{chapter}.{k}" for k in range(1, len(exercises) + 1)]
    falls = [f"{before.id} ({before.points} points) comes before {after.id} ({after.points} points)"
             for before, after in pairwise(exercises) if after.points < before.points]
    assert not falls, f"chapter {chapter}: points fall: " + "; ".join(falls)


def _same(a, b) -> bool:
    if torch.is_tensor(a):  # close, not equal: a matrix product may sum in another order
        return torch.is_tensor(b) and a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_expected_values_do_not_change_when_threads_compute_them_at_once():
    """``attn grade`` judges notebooks in threads; cases that build a seeded module drew from
    torch's global generator, so one thread's draws landed between another's seed and its
    weights, and a right answer failed now and then (exercise 8.4 in CI)."""
    cases = [(exercise, case) for chapter in (3, 4, 5, 6, 7, 8) for exercise in load_chapter(chapter)
             for case in exercise.cases]
    alone = [exercise.expected(case) for exercise, case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: [exercise.expected(case) for exercise, case in cases], range(8)))
    changed = sorted({f"{exercise.id} {case.label}" for run in runs
                      for (exercise, case), value, first in zip(cases, run, alone, strict=True)
                      if not _same(value, first)})
    assert not changed, changed


def test_a_check_leaves_the_learners_random_stream_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    check("8.4", get_exercise("8.4").reference)  # its cases seed and build layers
    assert torch.equal(torch.rand(3), expected_next)
    torch.manual_seed(123)
    with pytest.raises(ExerciseFailed):
        check("8.4", lambda x, *parts: x)
    assert torch.equal(torch.rand(3), expected_next)


def test_correct_answer_prints_one_line(capsys):
    from utils.attention import length_mask

    check("1.1", length_mask)
    out = capsys.readouterr().out
    assert out.strip() == "Exercise 1.1: correct (4 cases, 2 of them hidden). 2 points."


def test_stub_gets_a_friendly_message_not_an_error(capsys):
    def stub(*args):
        raise NotImplementedError()

    check("1.4", stub)
    assert "Exercise 1.4: not implemented yet" in capsys.readouterr().out


def test_wrong_answer_names_the_first_failing_case_and_the_first_hint_tier():
    def no_zero_rows(scores, valid_lens):  # NaN on the hidden fully-masked case
        lengths = valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(scores.shape[:-1])
        keep = torch.arange(scores.shape[-1]) < lengths[..., None]
        return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)

    with pytest.raises(ExerciseFailed) as failure:
        check("1.4", no_zero_rows)
    message = str(failure.value)
    assert "valid_lens=tensor([0, 3])" in message and "(a hidden case)" in message
    assert "NaN" in message and f"Hint: {get_exercise('1.4').hints[0]}" in message
    assert message.endswith('(more: hint("1.4"))')
    assert failure.value._render_traceback_() == [f"\x1b[31m{message}\x1b[0m"]


def test_mutating_the_input_fails_even_with_the_right_values():
    def in_place(X, valid_len, value=0.0):
        mask = torch.arange(X.shape[1])[None, :] < valid_len[:, None]
        X[~mask] = value
        return X

    with pytest.raises(ExerciseFailed, match="changed its input"):
        check("1.3", in_place)


def test_learner_errors_are_reported_not_raised():
    with pytest.raises(ExerciseFailed, match="your code raised ZeroDivisionError"):
        check("1.2", lambda x: 1 / 0)


def test_wrong_shape_is_explained():
    with pytest.raises(ExerciseFailed, match=r"shape \(2, 3\); expected \(2, 4\)"):
        check("1.1", lambda valid_lens, num_keys: torch.ones(len(valid_lens), 3, dtype=torch.bool))


@pytest.mark.parametrize(("bad_id", "message"), [("1", "look like '1.2'"), ("1.9", "no exercise '1.9'"),
                                                  ("99.1", "chapter 99 has no exercises")])
def test_unknown_exercise_ids(bad_id, message):
    with pytest.raises(ValueError, match=message):
        get_exercise(bad_id)


def test_chapter_modules_import_cleanly():
    for chapter in chapters_with_checks():
        importlib.import_module(f"utils.course.checks.ch{chapter:02d}")


def test_expect_names_the_value_and_reports_nan_anywhere():
    from utils.course.checks import expect

    compare = expect("your pair", atol=1e-3, nan_message="NaN: mask before the softmax")
    good = (torch.ones(2), torch.zeros(3))
    assert compare((torch.ones(2) + 1e-4, torch.zeros(3)), good) is None
    assert compare((torch.ones(2), torch.tensor([0.0, float("nan"), 0.0])), good) == "NaN: mask before the softmax"
    assert "item 0 of your pair" in compare((torch.ones(2) * 2, torch.zeros(3)), good)
