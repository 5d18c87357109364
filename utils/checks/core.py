"""The exercise checker: cases, the learner's run, the verdict.

An :class:`Exercise` names the object the learner defines (``target``), the cases
(some hidden from the notebook), a reference solution and a comparison. Running a
case (:func:`run_case`) and judging its outcome (:func:`judge`) are separate steps,
so the grader can run the learner's code in the student's kernel and judge the
serialized outcomes in its own process, where the learner cannot patch the judge.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from utils.checks.compare import compare_values, find_mutation


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
    its tensor arguments as they were.
    """

    id: str
    title: str
    points: int
    target: str
    cases: tuple[Case, ...]
    reference: Any
    hint: str = ""
    call: Callable[[Any, tuple], Any] = call_with_args
    compare: Callable[[Any, Any], str | None] = field(default=compare_values)
    inputs_unchanged: bool = True

    def expected(self, case: Case) -> Any:
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


def register(*exercises: Exercise) -> None:
    for exercise in exercises:
        if exercise.id in _REGISTRY:
            raise ValueError(f"exercise {exercise.id!r} is registered twice")
        _REGISTRY[exercise.id] = exercise


def chapter_module(chapter: int) -> str:
    return f"utils.checks.ch{chapter:02d}"


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


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise ``"N.k"``; a clear error for ids that do not exist."""
    parts = str(exercise_id).split(".")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"exercise_id must look like '1.2' (chapter.number); got {exercise_id!r}")
    chapter = int(parts[0])
    exercises = load_chapter(chapter)
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
    :class:`ExerciseFailed` naming the first failing case and a hint.
    """
    exercise = get_exercise(exercise_id)
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
            hint = f" Hint: {exercise.hint}" if exercise.hint else ""
            raise ExerciseFailed(f"Exercise {exercise.id}: not yet. On {where}: {problem}.{hint}")
    cases = f"{len(exercise.cases)} cases" + (f", {hidden} of them hidden" if hidden else "")
    print(f"Exercise {exercise.id}: correct ({cases}). {exercise.points} points.")
