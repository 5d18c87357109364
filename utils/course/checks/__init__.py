"""Auto-checked exercises: ``check("1.2", my_answer)`` in a notebook, ``hint("1.2")`` for help.

Each chapter's exercises live in ``utils/course/checks/chNN.py`` and are loaded on first use.
"""

from utils.course.checks.compare import compare_tensors, compare_values, expect
from utils.course.checks.core import (
    Case,
    Exercise,
    ExerciseFailed,
    Outcome,
    check,
    get_exercise,
    hint,
    judge,
    load_chapter,
    register,
    run_case,
)

__all__ = [
    "Case",
    "Exercise",
    "ExerciseFailed",
    "Outcome",
    "check",
    "compare_tensors",
    "compare_values",
    "expect",
    "get_exercise",
    "hint",
    "judge",
    "load_chapter",
    "register",
    "run_case",
]
