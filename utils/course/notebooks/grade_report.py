"""What ``attn grade`` writes: a report per submission (markdown + JSON) and the class table (CSV).

Everything here is made only from the grader's own verdicts, never from what a
notebook printed, and holds nothing that changes from run to run (no timings, no
temporary paths), so grading the same folder twice writes the same files.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ExerciseGrade:
    """The grader's verdict on one exercise: all its cases pass, or the first one that does not."""

    id: str
    title: str
    points: int
    max_points: int
    verdict: str  # "passed" | "failed" | "not implemented" | "missing" | "not graded"
    cases: int = 0
    hidden_cases: int = 0
    failed_case: str = ""
    failed_case_hidden: bool = False
    reason: str = ""
    hint: str = ""  # a failed exercise: the first tier of its hints (never the later ones)


@dataclass
class Report:
    """One submission's grade and what happened while grading it."""

    file: str
    name: str
    chapter: int | None
    status: str  # "ok" | "cell-errors" | "tampered" | "output-limit" | "timeout" | "kernel-died" | ...
    points: int | None = None
    max_points: int | None = None
    exercises: list[ExerciseGrade] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)
    message: str = ""  # why it was not (fully) graded, in one line
    sandboxed: bool = False  # graded in the bubblewrap sandbox (utils.course.notebooks.sandbox)
    blocked: list[str] = field(default_factory=list)  # what the sandbox denied, as the errors show it

    def summary(self) -> str:
        """The terminal's line for this submission."""
        score = "  -/-" if self.points is None else f"{self.points:>3}/{self.max_points}"
        tail = f": {self.message}" if self.message else ""
        return f"{score}  {self.status:<12} {self.file}{tail}"


def _where(event: dict) -> str:
    if event.get("cell") is None:
        return ""
    title = event.get("cell_title", "")
    return f"cell {event['cell'] + 1}" + (f" (`{title}`)" if title else "") + ": "


def describe_event(event: dict) -> str:
    return _where(event) + event["detail"]


# how a denial reads in a cell's error (the code sees an ordinary OSError), and what was denied
DENIALS = (("Read-only file system", "writing outside the working copy"),
           ("PermissionError", "a file or folder outside the working copy"),
           ("Network is unreachable", "the network"),
           ("ConnectionRefusedError", "a network connection (the sandbox's loopback is its own)"),
           ("Resource temporarily unavailable", "another process (the cap on processes)"),
           ("Cannot allocate memory", "memory past the cap"),
           ("File too large", "a file past the size cap"))
MISSING = re.compile(r"FileNotFoundError: \[Errno 2\] No such file or directory: '(/[^']*)'")
INSIDE = ("/tmp/attn-grade-work-", "/grade/")  # the working copy, as the kernel sees it


def blocked_by_sandbox(events: list[dict]) -> list[str]:
    """The cell errors that show the sandbox denying something, each with what it denied.

    A path outside the working copy that "does not exist" is one the sandbox hides.
    """
    found = []
    for event in events:
        detail = str(event.get("detail", ""))
        if event.get("kind") != "cell_error":
            continue
        denied = next((what for text, what in DENIALS if text in detail), None)
        missing = MISSING.search(detail)
        if denied is None and missing and not missing.group(1).startswith(INSIDE):
            denied = "a file outside the sandbox (it does not exist in there)"
        if denied is not None:
            found.append(f"{describe_event(event)} (denied: {denied})")
    return found


def write_markdown(report: Report, path: Path) -> None:
    chapter = f" (chapter {report.chapter:02d})" if report.chapter is not None else ""
    lines = [f"# {report.file}{chapter}", ""]
    if report.points is None:
        lines += [f"**Not graded** ({report.status}): {report.message}", ""]
    else:
        lines += [f"**{report.points} / {report.max_points} points** · status: {report.status}", ""]
        if report.message:
            lines += [report.message, ""]
        lines += ["| exercise | points | verdict |", "|---|---|---|"]
        for grade in report.exercises:
            if grade.verdict == "passed":
                hidden = f", {grade.hidden_cases} hidden" if grade.hidden_cases else ""
                verdict = f"passed ({grade.cases} cases{hidden})"
            elif grade.verdict == "not implemented":
                verdict = "not implemented yet"
            elif grade.failed_case:
                hidden = " (hidden)" if grade.failed_case_hidden else ""
                verdict = f"failed on case {grade.failed_case}{hidden}: {grade.reason}"
            else:
                verdict = f"{grade.verdict}: {grade.reason}"
            if grade.hint:
                verdict += f". Hint: {grade.hint}"
            verdict = verdict.replace("|", "\\|")
            lines.append(f"| {grade.id} {grade.title} | {grade.points}/{grade.max_points} | {verdict} |")
        lines.append("")
    if report.sandboxed:
        lines += ["Graded in a sandbox: no network, no files outside its own copy, capped processes "
                  "and memory.", ""]
    if report.blocked:
        lines += ["## Denied by the sandbox", ""] + [f"- {line}" for line in report.blocked] + [""]
    if report.events or report.tampering:
        lines += ["## What happened while grading", ""]
        lines += [f"- {describe_event(event)}" for event in report.events]
        if report.tampering:
            lines.append("- the notebook tampered with the checks (this changes nothing: the grader "
                         "runs its own):")
            lines += [f"  - {note}" for note in report.tampering]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")


def write_table(reports: list[Report], path: Path) -> None:
    """``grades.csv``: one row per submission, one column per exercise (points earned)."""
    exercise_ids: list[str] = []
    for report in reports:
        for grade in report.exercises:
            if grade.id not in exercise_ids:
                exercise_ids.append(grade.id)
    exercise_ids.sort(key=lambda text: [int(part) for part in text.split(".")])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "status", "points", "max_points", *exercise_ids, "message"])
        for report in reports:
            earned = {grade.id: grade.points for grade in report.exercises}
            writer.writerow([report.file, report.status,
                             "" if report.points is None else report.points,
                             "" if report.max_points is None else report.max_points,
                             *[earned.get(exercise_id, "") for exercise_id in exercise_ids],
                             report.message])
