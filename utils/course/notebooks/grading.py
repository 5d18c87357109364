"""``attn grade``: grade a folder of submitted notebooks with the chapter's checks.

Each notebook runs in its own kernel, in a private copy, inside a worker process
(:mod:`utils.course.notebooks.grade_worker`) that this process kills, with the kernel, when
it runs past a hard limit. The worker ships back the raw outcomes of every case,
visible and hidden; the verdicts are made HERE, by ``judge`` from the registry this
process imported, so nothing a notebook prints, stores or monkeypatches can change
its grade. Results: ``OUT/<name>.md`` and ``OUT/<name>.json`` per submission, and
``OUT/grades.csv`` for the class.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.command_line import fail, int_at_least, number_in, path_text
from utils.course.checks.core import Exercise, Outcome, chapters_with_exercises, judge, load_chapter
from utils.course.notebooks import sandbox
from utils.course.notebooks.grade_collect import OPAQUE_KEY
from utils.course.notebooks.grade_report import (
    ExerciseGrade,
    Report,
    blocked_by_sandbox,
    describe_event,
    write_json,
    write_markdown,
    write_table,
)
from utils.course.notebooks.grade_worker import PROBE_SECONDS, TOKEN_VARIABLE, inputs_file
from utils.course.notebooks.submissions import Submission, find_submissions, inspect, unique_names

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # the course's `utils`, as this process sees it
STATUSES = ("ok", "not_implemented", "error", "mutated")
# the worst thing that happened names the submission's status
SEVERITY = {"kernel_died": "kernel-died", "gave_up": "kernel-died", "kernel_start_failed": "kernel-died",
            "cell_timeout": "timeout", "notebook_timeout": "timeout", "output_limit": "output-limit",
            "cell_error": "cell-errors"}
# the worker is killed from inside its sandbox: only the notebook's code can do that
WORKER_KILLED = "worker-killed"
STATUS_ORDER = ("kernel-died", "timeout", "output-limit", "tampered", "cell-errors", "ok")


@dataclass(frozen=True)
class Limits:
    timeout_cell: int = 120
    timeout_notebook: int = 600
    timeout_startup: int = 180  # a kernel's start and library imports: not the notebook's time
    memory_bytes: int = 4 * 2**30
    max_output_bytes: int = 20 * 2**20
    profile: str = "smoke"
    threads: int = 1
    max_attempts: int = 3
    sandbox: bool = False  # run the worker and kernel in a bubblewrap sandbox (utils.course.notebooks.sandbox)

    def hard_seconds(self, exercises: int) -> float:
        """When the worker is killed, whatever it is doing: its own limits plus a margin."""
        per_attempt = self.timeout_startup + 60 + PROBE_SECONDS  # start, imports, a last probe
        return self.timeout_notebook + self.max_attempts * per_attempt + (exercises + 2) * self.timeout_cell + 60


# ---- outcomes from the kernel, and the verdict --------------------------------------------
class Opaque:
    """Stands for an object the kernel could not ship (its type's name is this class's name)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _unship(value):
    if isinstance(value, dict) and OPAQUE_KEY in value:
        name = str(value[OPAQUE_KEY])
        kind = type(name if name.isidentifier() else "object", (Opaque,), {})
        return kind(str(value.get("repr", "")))
    if isinstance(value, list):
        return [_unship(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_unship(item) for item in value)
    if isinstance(value, dict):
        return {key: _unship(item) for key, item in value.items()}
    return value


def load_outcomes(data: str) -> dict:
    """The kernel's record for one exercise, loaded safely (tensors and plain data only)."""
    with warnings.catch_warnings():  # torch warns about unusual pickles before refusing them
        warnings.simplefilter("ignore")
        record = torch.load(io.BytesIO(base64.b64decode(data)), weights_only=True)
    if not isinstance(record, dict) or not isinstance(record.get("outcomes"), list):
        raise ValueError("the record is not a dict with a list of outcomes")
    return record


def grade_exercise(exercise: Exercise, entry: dict, limits: Limits) -> tuple[ExerciseGrade, list[str]]:
    """Judge one exercise from the worker's entry; also return the tampering notes it carried.

    A failed exercise carries the first tier of its hints only, as ``check`` shows it: the
    later tiers are for the learner to ask for (``hint("N.k")``), not for the report.
    """
    grade, tampering = _judge_entry(exercise, entry, limits)
    if grade.verdict == "failed" and exercise.hints:
        grade.hint = exercise.hints[0]
    return grade, tampering


def _judge_entry(exercise: Exercise, entry: dict, limits: Limits) -> tuple[ExerciseGrade, list[str]]:
    hidden = sum(case.hidden for case in exercise.cases)
    grade = ExerciseGrade(id=exercise.id, title=exercise.title, points=0, max_points=exercise.points,
                          verdict="not graded", cases=len(exercise.cases), hidden_cases=hidden)
    record = None
    if entry.get("data"):
        try:
            record = load_outcomes(entry["data"])
        except Exception as error:  # a record the kernel's code could not have written
            grade.reason = f"the kernel's results could not be read ({type(error).__name__})"
            return grade, []
    if record is None:
        grade.reason = entry.get("detail") or "no results came back from the kernel"
        return grade, []
    tampering = [str(note)[:300] for note in record.get("tampering", []) if isinstance(note, str)]
    if not record.get("defined"):
        grade.verdict = "missing"
        grade.reason = f"the notebook does not define `{exercise.target}`"
        return grade, tampering
    uses = [str(name)[:200] for name in record.get("forbidden", []) if isinstance(name, str)]
    if uses:
        grade.verdict = "forbidden"
        grade.reason = f"your answer uses {', '.join(uses)}, which this exercise forbids"
        return grade, tampering
    outcomes = record["outcomes"]
    for position, case in enumerate(exercise.cases):
        grade.failed_case, grade.failed_case_hidden = case.label, case.hidden
        grade.verdict = "failed"
        if position >= len(outcomes) or outcomes[position].get("interrupted"):
            if entry.get("status") == "timeout":
                grade.reason = f"your code ran past the {limits.timeout_cell} s limit"
            elif position < len(outcomes):
                grade.reason = "your code raised KeyboardInterrupt"
            else:
                grade.verdict = "not graded"
                grade.reason = entry.get("detail") or "the grading stopped before this case"
            return grade, tampering
        raw = outcomes[position]
        status = raw.get("status")
        if status not in STATUSES:
            grade.reason = "the kernel's results are malformed"
            return grade, tampering
        outcome = Outcome(status, value=_unship(raw.get("value")), error=str(raw.get("error", ""))[:300])
        try:
            problem = judge(exercise, case, outcome)
        except Exception as error:  # an answer so odd that the comparison itself failed
            problem = f"the grader could not compare your result ({type(error).__name__}: {error})"
        if status == "not_implemented":
            grade.verdict, grade.failed_case, grade.failed_case_hidden = "not implemented", "", False
        if problem is not None:
            grade.reason = problem
            return grade, tampering
    grade.verdict, grade.points = "passed", exercise.points
    grade.failed_case, grade.failed_case_hidden = "", False
    return grade, tampering


def build_report(submission: Submission, exercises: list[Exercise], result: dict | None,
                 limits: Limits, failure: str = "", status: str = "") -> Report:
    report = Report(file=submission.file, name=submission.name, chapter=submission.chapter,
                    status=status or "ok", sandboxed=limits.sandbox)
    if result is None:
        report.message = failure
        report.max_points = sum(exercise.points for exercise in exercises)
        report.points = 0
        report.exercises = [ExerciseGrade(id=ex.id, title=ex.title, points=0, max_points=ex.points,
                                          verdict="not graded", cases=len(ex.cases),
                                          hidden_cases=sum(case.hidden for case in ex.cases),
                                          reason=failure) for ex in exercises]
        return report
    entries = result.get("exercises", {})
    tampering: list[str] = []
    for exercise in exercises:
        grade, notes = grade_exercise(exercise, entries.get(exercise.id, {}), limits)
        report.exercises.append(grade)
        tampering += [note for note in notes if note not in tampering]
    report.tampering = tampering
    report.events = [event for event in result.get("events", []) if isinstance(event, dict)]
    if limits.sandbox:
        report.blocked = blocked_by_sandbox(report.events)
    report.points = sum(grade.points for grade in report.exercises)
    report.max_points = sum(exercise.points for exercise in exercises)
    found = {SEVERITY.get(event.get("kind"), "cell-errors") for event in report.events}
    if tampering:
        found.add("tampered")
    report.status = next((name for name in STATUS_ORDER if name in found), "ok")
    serious = [event for event in report.events if event.get("kind") != "cell_error"]
    if serious:
        report.message = describe_event(serious[0]).replace("`", "")
    elif tampering:
        report.message = f"tampered with the checks: {tampering[0]}"
    return report


# ---- running one submission -----------------------------------------------------------------
def kill_tagged(token: str) -> None:
    """SIGKILL every process whose environment carries this submission's token (Linux)."""
    marker = f"{TOKEN_VARIABLE}={token}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _plan(submission: Submission, exercises: list[Exercise], limits: Limits, private: Path,
          token: str) -> dict:
    """What the worker needs, with the paths it sees (inside the sandbox: ``/grade``, ``/course``)."""
    inside = Path(sandbox.PRIVATE) if limits.sandbox else private
    package_dir = Path(sandbox.COURSE) / PACKAGE_DIR.name if limits.sandbox else PACKAGE_DIR
    return {"notebook": str(inside / "submission.ipynb"), "name": submission.path.name,
            "chapter": submission.chapter, "exercises": [ex.id for ex in exercises],
            "package_dir": str(package_dir), "private": str(inside), "token": token,
            "timeout_cell": limits.timeout_cell, "timeout_notebook": limits.timeout_notebook,
            "timeout_startup": limits.timeout_startup,
            "memory_bytes": limits.memory_bytes, "max_output_bytes": limits.max_output_bytes,
            "profile": limits.profile, "threads": limits.threads, "max_attempts": limits.max_attempts}


def worker_command(private: Path, limits: Limits, token: str) -> tuple[list[str], dict, str]:
    """(argv, environment, cwd) of one submission's worker: sealed in bwrap when ``limits.sandbox``.

    The sandbox gets a minimal environment (no secrets of the grader's), and the worker runs
    from ``/``, where nobody inside can write a module that its later imports would pick up.
    """
    if not limits.sandbox:
        root = str(PACKAGE_DIR.parent)
        environment = {**os.environ, TOKEN_VARIABLE: token,
                       "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        return ([sys.executable, "-m", "utils.course.notebooks.grade_worker", str(private / "plan.json")],
                environment, root)
    if os.geteuid() == 0:  # the worker becomes nobody inside: the folder must be its
        for path in [private, *private.rglob("*")]:
            os.chown(path, sandbox.SANDBOX_UID, sandbox.SANDBOX_UID)
    environment = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TERM") if name in os.environ}
    environment.update({TOKEN_VARIABLE: token, "PYTHONPATH": sandbox.COURSE, "PYTHONDONTWRITEBYTECODE": "1"})
    argv = [*sandbox.bwrap_args(private, PACKAGE_DIR, gpu=limits.profile == "gpu"), "--chdir", "/",
            sys.executable, "-m", "utils.course.notebooks.grade_worker", f"{sandbox.PRIVATE}/plan.json"]
    return argv, environment, "/"


def _worker_failure(private: Path, returncode: int, limits: Limits) -> tuple[str, str]:
    """(status, message) for a worker that sent back no result."""
    log = private / "worker.log"
    tail = log.read_text(encoding="utf-8", errors="replace")[-300:] if log.is_file() else ""
    last = tail.strip().splitlines()[-1] if tail.strip() else ""
    # bwrap exits 128 + N when its command dies of signal N; only code inside can send it
    signal_number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if limits.sandbox and signal_number:
        return WORKER_KILLED, (f"the notebook's code killed its grading worker (signal {signal_number}, "
                               "e.g. kill -9 -1 or os.kill of a parent): nothing could be graded")
    return "grader-error", (f"the grading worker failed (exit status {returncode}"
                            f"{': ' + last if last else ''})")


def run_worker(submission: Submission, exercises: list[Exercise], limits: Limits) -> Report:
    """Execute and collect one submission in a worker process; judge its outcomes here."""
    token = secrets.token_hex(12)
    private = Path(tempfile.mkdtemp(prefix="attn-grade-"))
    try:
        shutil.copyfile(submission.path, private / "submission.ipynb")
        for exercise in exercises:  # inputs only: the expected results are computed here, never there
            torch.save([case.make() for case in exercise.cases], private / inputs_file(exercise.id))
        plan = _plan(submission, exercises, limits, private, token)
        (private / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        argv, environment, cwd = worker_command(private, limits, token)
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd,
                                   env=environment)
        try:
            stdout, _ = process.communicate(timeout=limits.hard_seconds(len(exercises)))
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            kill_tagged(token)
            process.communicate()
            return build_report(submission, exercises, None, limits, status="killed",
                                failure=f"grading ran past its hard limit of "
                                        f"{limits.hard_seconds(len(exercises)):.0f} s and was killed")
        finally:
            _kill_group(process.pid)
            kill_tagged(token)
        result = None
        lines = stdout.decode("utf-8", "replace").strip().splitlines()
        if process.returncode == 0 and lines:
            try:
                result = json.loads(lines[-1])
            except json.JSONDecodeError:
                result = None
        if result is None:
            status, failure = _worker_failure(private, process.returncode, limits)
            return build_report(submission, exercises, None, limits, status=status, failure=failure)
        return build_report(submission, exercises, result, limits)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        for workdir in Path(tempfile.gettempdir()).glob(f"attn-grade-work-{token}-*"):
            shutil.rmtree(workdir, ignore_errors=True)  # left behind by a killed worker


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def grade_submission(submission: Submission, limits: Limits) -> Report:
    """The report for one submission; never raises (a grader failure is reported as such)."""
    if submission.problem is not None:
        return Report(file=submission.file, name=submission.name, chapter=submission.chapter,
                      status="invalid", message=submission.problem)
    exercises = load_chapter(submission.chapter)
    try:
        return run_worker(submission, exercises, limits)
    except Exception as error:  # the grader's own bug: report it, grade the others
        return build_report(submission, exercises, None, limits, status="grader-error",
                            failure=f"the grader failed: {type(error).__name__}: {error}")


def _has_exercises(chapter: int) -> bool:
    try:
        return bool(load_chapter(chapter))
    except ValueError:
        return False


def grade(paths: list[str | Path], *, out: Path, chapter: int | None = None, jobs: int = 2,
          limits: Limits = Limits(), progress: bool = True) -> list[Report]:
    """Grade every submission in ``paths``; write the reports and ``grades.csv`` into ``out``."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = find_submissions(paths, exclude=out)
    submissions = [inspect(path, chapter=chapter, known_chapters=_has_exercises, file=file)
                   for path, file in files]
    for submission, name in zip(submissions, unique_names([path for path, _ in files]), strict=True):
        submission.name = name
    reports: dict[int, Report] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(submissions), desc="grading", unit="notebook", disable=not progress,
                 file=sys.stderr) as bar:
        futures = {pool.submit(grade_submission, submission, limits): position
                   for position, submission in enumerate(submissions)}
        for future in as_completed(futures):
            report = future.result()
            reports[futures[future]] = report
            write_markdown(report, out / f"{report.name}.md")
            write_json(report, out / f"{report.name}.json")
            # the table as it stands, after every submission: a crash later loses no row
            _write_table_now([reports[position] for position in sorted(reports)], out / "grades.csv")
            bar.write(report.summary(), file=sys.stdout)
            bar.update(1)
    return [reports[position] for position in range(len(submissions))]


def _write_table_now(reports: list[Report], path: Path) -> None:
    """``write_table``, replacing ``path`` in one step (a reader never sees half a table)."""
    partial = path.with_name(f".{path.name}.partial")
    write_table(reports, partial)
    os.replace(partial, path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                        help="notebook files, or folders of them")
    parser.add_argument("--chapter", type=int, default=None, choices=chapters_with_exercises(),
                        help="the chapter (default: from the file name NN_..., else the check cells)")
    parser.add_argument("--out", type=lambda text: Path(path_text(text)), default=Path("grades"),
                        help="where the reports go (default: grades)")
    parser.add_argument("--jobs", type=int_at_least(1), default=2, help="notebooks graded at once (default: 2)")
    parser.add_argument("--timeout-cell", type=int_at_least(1), default=Limits.timeout_cell,
                        help="seconds per cell, and per exercise's checks (default: %(default)s)")
    parser.add_argument("--timeout-notebook", type=int_at_least(1), default=Limits.timeout_notebook,
                        help="seconds for all of a notebook's cells (default: %(default)s)")
    parser.add_argument("--timeout-startup", type=int_at_least(1), default=Limits.timeout_startup,
                        help="seconds for a kernel to start and import torch & co. (not counted in the "
                             "notebook's time; default: %(default)s)")
    # bounded above so that the byte count stays a finite int (1 TiB of memory, 1 GB of output)
    parser.add_argument("--memory-limit", type=number_in(0, 1024, low_open=True), default=Limits.memory_bytes / 2**30,
                        help="GiB of memory a kernel may allocate (default: %(default)s)")
    parser.add_argument("--max-output", type=number_in(0, 1024, low_open=True),
                        default=Limits.max_output_bytes / 2**20,
                        help="MB a cell may print before it is interrupted (default: %(default)s)")
    parser.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "gpu"),
                        help="COURSE_PROFILE for the notebooks (default: smoke)")
    parser.add_argument("--sandbox", default="auto", choices=sandbox.MODES,
                        help="seal each submission in a bubblewrap sandbox: auto (when bwrap works, "
                             "else refuse to grade), require (fail without it: for CI), off (trusted "
                             "notebooks only; default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        return fail("grade", f"--out {args.out} is a file, not a folder: give a folder for the reports", 2)
    files = find_submissions(args.submissions, exclude=args.out)
    if not files:
        return fail("grade", "no files to grade in " + ", ".join(map(str, args.submissions)), 2)
    try:
        sealed = sandbox.resolve(args.sandbox)
    except RuntimeError as error:
        return fail("grade", str(error), 2)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    limits = Limits(timeout_cell=args.timeout_cell, timeout_notebook=args.timeout_notebook,
                    timeout_startup=args.timeout_startup,
                    memory_bytes=int(args.memory_limit * 2**30),
                    max_output_bytes=int(args.max_output * 2**20), profile=args.profile, threads=threads,
                    sandbox=sealed)
    reports = grade(args.submissions, out=args.out, chapter=args.chapter, jobs=args.jobs, limits=limits)
    graded = [report for report in reports if report.points is not None]
    print(f"{len(graded)} of {len(reports)} submissions graded; table: {args.out / 'grades.csv'}")
    return 0
