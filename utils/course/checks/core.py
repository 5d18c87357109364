"""The exercise checker: cases, the learner's run, the verdict, and tiered hints.

An :class:`Exercise` names the object the learner defines (``target``), the cases
(some hidden from the notebook), a reference solution, a comparison and its hints.
Running a case (:func:`run_case`) and judging its outcome (:func:`judge`) are separate
steps, so the grader can run the learner's code in the student's kernel and judge the
serialized outcomes in its own process, where the learner cannot patch the judge.

Hints come in tiers and never contain solution code: a wrong answer shows tier 1 (the
idea to think about); :func:`hint` shows the next tiers (the structure, in words; then
where the lesson shows the closely related technique).
"""

from __future__ import annotations

import copy
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from utils.course.checks.compare import compare_values, find_mutation
from utils.validate import is_int


@dataclass(frozen=True)
class Case:
    """One input to an exercise. ``make()`` builds fresh arguments (a tuple) every time."""

    label: str
    make: Callable[[], tuple]
    hidden: bool = False


def call_with_args(obj: Any, args: tuple) -> Any:
    """The default way to run an answer on a case: ``obj(*args)``."""
    return obj(*args)


@dataclass(frozen=True)
class Exercise:
    """One auto-checked exercise.

    ``call(answer, args)`` runs an answer (the learner's object or ``reference``) on a
    case's arguments; ``compare(got, expected)`` returns ``None`` when they agree, else
    the reason they do not. With ``inputs_unchanged`` the learner's code must leave
    its tensor arguments as they were. ``forbidden`` names (dotted, where they are defined)
    what the exercise's text forbids: ``attn grade`` gives no points to an answer that is,
    subclasses, wraps or calls one of them (and anything of ``utils.course.checks``).

    ``hints`` are tiers, from the gentlest: tier 1 names the idea the failing cases test,
    tier 2 the structure of an answer in words (shapes, which operation), an optional
    tier 3 the lesson section that shows the closely related technique. No tier holds
    solution code (``tests/test_hints.py`` checks it against the solution notebooks).
    """

    id: str
    title: str
    points: int
    target: str
    cases: tuple[Case, ...]
    reference: Any
    hints: tuple[str, ...] = ()
    call: Callable[[Any, tuple], Any] = call_with_args
    compare: Callable[[Any, Any], str | None] = field(default=compare_values)
    inputs_unchanged: bool = True
    forbidden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.hints, tuple) or not all(isinstance(text, str) for text in self.hints):
            raise TypeError(f"exercise {self.id}: hints must be a tuple of strings, one per tier; "
                            f"got {self.hints!r}")
        if any(not text.strip() for text in self.hints):
            raise ValueError(f"exercise {self.id}: a hint tier is empty")

    def expected(self, case: Case) -> Any:
        # one at a time: a case may seed torch's global generator and build a module from it, and
        # ``attn grade`` judges several notebooks in threads, whose draws would interleave
        with _EXPECTED_ONE_AT_A_TIME:
            return self.call(self.reference, case.make())


@dataclass
class Outcome:
    """What happened when an answer ran on one case (serializable with ``torch.save``)."""

    status: str  # "ok" | "not_implemented" | "error" | "mutated"
    value: Any = None
    error: str = ""


class ExerciseFailed(AssertionError):
    """A wrong answer. Jupyter shows only its one-line message, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom tracebacks
        return [f"\x1b[31m{self}\x1b[0m"]


_REGISTRY: dict[str, Exercise] = {}
_EXPECTED_ONE_AT_A_TIME = threading.Lock()


def register(*exercises: Exercise) -> None:
    for exercise in exercises:
        if exercise.id in _REGISTRY:
            raise ValueError(f"exercise {exercise.id!r} is registered twice")
        _REGISTRY[exercise.id] = exercise


def chapter_module(chapter: int) -> str:
    return f"utils.course.checks.ch{chapter:02d}"


def load_chapter(chapter: int) -> list[Exercise]:
    """The exercises of chapter ``chapter``, in order (importing its checks module)."""
    try:
        importlib.import_module(chapter_module(chapter))
    except ModuleNotFoundError as error:
        if error.name != chapter_module(chapter):
            raise
        raise ValueError(f"chapter {chapter} has no exercises") from None
    prefix = f"{chapter}."
    found = [ex for key, ex in _REGISTRY.items() if key.startswith(prefix)]
    return sorted(found, key=lambda ex: [int(part) for part in ex.id.split(".")])


def chapters_with_exercises() -> list[int]:
    """The chapters that have a checks module ``utils/course/checks/chNN.py``."""
    folder = Path(__file__).resolve().parent
    return sorted(int(path.stem[2:]) for path in folder.glob("ch[0-9][0-9].py"))


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise ``"N.k"``; a clear error for ids that do not exist."""
    parts = str(exercise_id).split(".")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"exercise_id must look like '1.2' (chapter.number); got {exercise_id!r}")
    chapter = int(parts[0])
    try:
        exercises = load_chapter(chapter)
    except ValueError:
        known = ", ".join(str(number) for number in chapters_with_exercises())
        raise ValueError(f"no exercise {exercise_id!r}: chapter {chapter} has no exercises "
                         f"(chapters with exercises: {known})") from None
    for exercise in exercises:
        if exercise.id == exercise_id:
            return exercise
    known = ", ".join(ex.id for ex in exercises)
    raise ValueError(f"no exercise {exercise_id!r}; chapter {chapter} has {known}")


def _describe_error(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def run_case(exercise: Exercise, answer: Any, case: Case) -> Outcome:
    """Run ``answer`` on one case and report what happened; never raises for the answer's errors."""
    args = case.make()
    before = copy.deepcopy(args) if exercise.inputs_unchanged else None
    try:
        value = exercise.call(answer, args)
    except NotImplementedError:
        return Outcome("not_implemented")
    except Exception as error:  # the learner's bug, reported in the verdict
        return Outcome("error", error=_describe_error(error))
    if before is not None:
        changed = find_mutation(before, args)
        if changed:
            return Outcome("mutated", error=changed)
    return Outcome("ok", value=detach(value))


def detach(value: Any) -> Any:
    """Tensors detached and on the CPU, recursively, so outcomes can be saved and compared."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(detach(item) for item in value)
    if isinstance(value, dict):
        return {key: detach(item) for key, item in value.items()}
    return value


def judge(exercise: Exercise, case: Case, outcome: Outcome) -> str | None:
    """``None`` when the outcome is right for this case, else why not (one line)."""
    if outcome.status == "not_implemented":
        return "not implemented yet"
    if outcome.status == "error":
        return f"your code raised {outcome.error}"
    if outcome.status == "mutated":
        return f"your code changed its input ({outcome.error}); work on a copy or build a new tensor"
    return exercise.compare(outcome.value, exercise.expected(case))


def check(exercise_id: str, answer: Any) -> None:
    """Check an answer against every case of an exercise and print a one-line verdict.

    An unimplemented stub prints how to start; a wrong answer raises
    :class:`ExerciseFailed` naming the first failing case, the first tier of the hints,
    and how to get the next ones (:func:`hint`).
    """
    exercise = get_exercise(exercise_id)
    # the cases build seeded modules: the notebook's random numbers after a check are the ones
    # it would have drawn without it
    with torch.random.fork_rng(devices=[]):
        _check_every_case(exercise, answer)


def _check_every_case(exercise: Exercise, answer: Any) -> None:
    hidden = sum(case.hidden for case in exercise.cases)
    for case in exercise.cases:
        outcome = run_case(exercise, answer, case)
        if outcome.status == "not_implemented":
            print(
                f"Exercise {exercise.id}: not implemented yet. Replace `raise NotImplementedError` "
                f"in the cell above with your code, run it, then run this cell again."
            )
            return
        problem = judge(exercise, case, outcome)
        if problem is not None:
            where = f"case {case.label}" + (" (a hidden case)" if case.hidden else "")
            hint_text = ""
            if exercise.hints:
                _HINTS_SHOWN[exercise.id] = max(_HINTS_SHOWN.get(exercise.id, 0), 1)
                more = f' (more: hint("{exercise.id}"))' if len(exercise.hints) > 1 else ""
                hint_text = f" Hint: {exercise.hints[0]}{more}"
            raise ExerciseFailed(f"Exercise {exercise.id}: not yet. On {where}: {problem}.{hint_text}")
    cases = f"{len(exercise.cases)} cases" + (f", {hidden} of them hidden" if hidden else "")
    print(f"Exercise {exercise.id}: correct ({cases}). {exercise.points} points.")


# the highest tier shown so far of each exercise, in this process (a failed check shows tier 1)
_HINTS_SHOWN: dict[str, int] = {}
_COURSE_ROOT = Path(__file__).resolve().parents[3]


def solution_notebook(chapter: int) -> str:
    """Where chapter ``chapter``'s worked solutions are, as a path from the course's root."""
    for folder in ("solutions", "chapters"):  # the same file names in both
        found = sorted((_COURSE_ROOT / folder).glob(f"{chapter:02d}_*.ipynb"))
        if found:
            return f"solutions/{found[0].name}"
    return f"solutions/{chapter:02d}_*.ipynb"


def hint(exercise_id: str, tier: int | None = None) -> None:
    """Print a hint for exercise ``"N.k"``: the next tier each call, or tier ``tier``.

    Tiers go from the idea to think about, to the structure of an answer, to the lesson
    section that shows the technique. A failed :func:`check` has shown tier 1 already, so
    the next call shows tier 2; after the last tier it points to the solution notebook.
    Asking for a tier moves the walk there: the next call shows the tier after it.
    """
    exercise = get_exercise(exercise_id)
    count = len(exercise.hints)
    if count == 0:
        print(f"Exercise {exercise.id} has no hints.")
        return
    if tier is not None:
        if not is_int(tier) or not 1 <= tier <= count:
            raise ValueError(f"tier must be a whole number from 1 to {count} for exercise "
                             f"{exercise.id}; got {tier!r}")
        chosen = tier
    else:
        chosen = _HINTS_SHOWN.get(exercise.id, 0) + 1
        if chosen > count:
            chapter = int(exercise.id.split(".")[0])
            print(f"Exercise {exercise.id}: no more hints (all {count} shown). The worked solution "
                  f"is in {solution_notebook(chapter)}; hint(\"{exercise.id}\", tier=1) shows a "
                  f"tier again.")
            return
    _HINTS_SHOWN[exercise.id] = chosen
    print(f"Exercise {exercise.id}, hint {chosen} of {count}: {exercise.hints[chosen - 1]}")
