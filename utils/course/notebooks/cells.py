"""What a cell is, by the course's conventions (DESIGN §3)."""

from __future__ import annotations

import re

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
EXERCISE_TAG = "exercise"
CHECK_CALL = re.compile(r"^\s*check\(\s*[\"'](\d+\.\d+)[\"']", re.MULTILINE)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_exercise(cell) -> bool:
    return cell.get("cell_type") == "code" and EXERCISE_TAG in tags(cell)


def checked_exercises(cell) -> list[str]:
    """The exercise ids a code cell checks with ``check("N.k", …)``."""
    if cell.get("cell_type") != "code":
        return []
    return CHECK_CALL.findall(cell.get("source", ""))


def is_check(cell) -> bool:
    return bool(checked_exercises(cell))
