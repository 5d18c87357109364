"""``attn release``: write ``chapters/`` (what learners open) from ``solutions/`` (the source of truth).

In cells tagged ``exercise`` the code between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` becomes a stub that raises ``NotImplementedError``. The
released notebook is then executed (smoke profile) so every stored output, the
check cells' "not implemented yet" included, comes from a real run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from utils.command_line import fail, path_text
from utils.course.notebooks.cells import BEGIN_SOLUTION, END_SOLUTION, is_check, is_exercise, tags
from utils.course.notebooks.execute import execute, execute_file, write

STUB = "raise NotImplementedError()"
# cells whose output legitimately varies run to run (timings): nbval does not compare them either
VARYING_OUTPUT_TAGS = {"nbval-ignore-output", "nbval-skip"}
_BLOCK = re.compile(
    rf"^(?P<indent>[ \t]*){re.escape(BEGIN_SOLUTION)}[^\n]*\n.*?^[ \t]*{re.escape(END_SOLUTION)}[^\n]*(\n|$)",
    re.MULTILINE | re.DOTALL,
)


def stub_source(source: str, *, where: str = "cell") -> str:
    """Replace every solution block in ``source`` with a stub at the block's indentation."""
    if BEGIN_SOLUTION not in source:
        raise ValueError(f"{where} is tagged 'exercise' but has no '{BEGIN_SOLUTION}' line")
    if source.count(BEGIN_SOLUTION) != source.count(END_SOLUTION):
        raise ValueError(f"{where}: '{BEGIN_SOLUTION}' and '{END_SOLUTION}' lines do not pair up")

    def replace(match: re.Match) -> str:
        indent = match.group("indent")
        return f"{indent}# YOUR CODE HERE\n{indent}{STUB}\n"

    return _BLOCK.sub(replace, source).rstrip("\n")


def release_notebook(solution, *, name: str = "notebook"):
    """The chapter version of a solution notebook, with no outputs (they come from running it)."""
    chapter = copy.deepcopy(solution)
    for position, cell in enumerate(chapter.cells):
        if cell.cell_type != "code":
            continue
        if is_exercise(cell):
            cell.source = stub_source(cell.source, where=f"{name}, cell {position}")
        cell.outputs = []
        cell.execution_count = None
    return chapter


def comparable_outputs(cell) -> list[dict]:
    """A cell's outputs without what legitimately differs between two runs.

    Execution counts and image bytes are dropped, and consecutive chunks of one stream are
    joined: a busy machine may deliver the same printed text in more pieces (nbval joins them too).
    """
    result: list[dict] = []
    for output in cell.get("outputs", []):
        output = {key: value for key, value in output.items() if key not in ("execution_count", "metadata")}
        if "data" in output:
            output["data"] = {mime: value for mime, value in output["data"].items()
                              if not mime.startswith("image/")}
        previous = result[-1] if result else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] += output["text"]
            continue
        result.append(output)
    return result


def differences(solution, chapter, *, name: str) -> list[str]:
    """Why ``chapter`` is not what releasing ``solution`` writes (empty when it is)."""
    expected = release_notebook(solution, name=name)
    if len(expected.cells) != len(chapter.cells):
        return [f"{name}: {len(chapter.cells)} cells, but the solution releases to {len(expected.cells)}"]
    problems = []
    for position, (want, got, solved) in enumerate(zip(expected.cells, chapter.cells, solution.cells,
                                                       strict=True)):
        where = f"{name}, cell {position}"
        if want.cell_type != got.cell_type or want.source != got.source:
            problems.append(f"{where}: the source differs from the released solution")
        elif want.get("metadata", {}).get("tags", []) != got.get("metadata", {}).get("tags", []):
            problems.append(f"{where}: the tags differ from the solution's")
        elif got.cell_type == "code" and is_exercise(got) and got.outputs:
            problems.append(f"{where}: an exercise cell must have no stored output")
        elif got.cell_type == "code" and not is_exercise(got) and not is_check(got) \
                and not set(tags(got)) & VARYING_OUTPUT_TAGS:
            if comparable_outputs(got) != comparable_outputs(solved):
                problems.append(f"{where}: its output differs from the solution's (re-run `make release`)")
    return problems


def _read_notebook(path: Path):
    """``nbformat.read`` (version 4), with a one-line ``ValueError`` naming the file when it is not one."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # NotJSONError, JSONDecodeError, ValidationError, KeyError, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a readable notebook ({type(error).__name__}: {first[:200]})") from None


def release(solutions_dir: Path, chapters_dir: Path, names: list[str] | None = None) -> list[Path]:
    chapters_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for solution_path in _solution_paths(solutions_dir, names):
        solution = _read_notebook(solution_path)
        chapter = release_notebook(solution, name=solution_path.name)
        execute(chapter, cwd=chapters_dir, profile="smoke", allow_errors=True)
        target = chapters_dir / solution_path.name
        write(chapter, target)
        written.append(target)
        print(f"released {solution_path.name}")
    return written


def check_release(solutions_dir: Path, chapters_dir: Path) -> list[str]:
    problems = []
    solution_paths = _solution_paths(solutions_dir, None)
    for solution_path in solution_paths:
        chapter_path = chapters_dir / solution_path.name
        if not chapter_path.exists():
            problems.append(f"{chapter_path.name}: missing from {chapters_dir.name}/ (run `make release`)")
            continue
        problems += differences(_read_notebook(solution_path), _read_notebook(chapter_path), name=chapter_path.name)
    released = {path.name for path in solution_paths}
    for stray in sorted(chapters_dir.glob("*.ipynb")):
        if stray.name not in released:
            problems.append(f"{stray.name}: in {chapters_dir.name}/ but not in {solutions_dir.name}/")
    return problems


def _solution_paths(solutions_dir: Path, names: list[str] | None) -> list[Path]:
    paths = sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))
    if names:
        wanted = {Path(name).name for name in names}
        unknown = wanted - {path.name for path in paths}
        if unknown:
            raise ValueError(f"no such notebook in {solutions_dir}/: {', '.join(sorted(unknown))}")
        paths = [path for path in paths if path.name in wanted]
    return paths


def configure(parser) -> None:
    parser.add_argument("notebooks", nargs="*", help="only these notebooks (file names); default all")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if chapters/ differ from what release would write")
    parser.add_argument("--execute-solutions", action="store_true",
                        help="first re-run the solutions (smoke profile) to refresh their stored outputs")
    parser.add_argument("--solutions", type=_folder, default=Path("solutions"), help="default: solutions/")
    parser.add_argument("--chapters", type=_folder, default=Path("chapters"), help="default: chapters/")


def _folder(text: str) -> Path:
    return Path(path_text(text))


def run(args) -> int:
    if not args.solutions.is_dir():
        where = "is a file, not a folder" if args.solutions.exists() else "not found; run it from the course's root folder"
        return fail("release", f"--solutions {args.solutions}: {where}", 2)
    if args.chapters.exists() and not args.chapters.is_dir():
        return fail("release", f"--chapters {args.chapters} is a file, not a folder", 2)
    try:
        return _run(args)
    except ValueError as error:  # an unreadable notebook, unpaired solution markers, an unknown name
        return fail("release", str(error), 2)


def _run(args) -> int:
    if args.check:
        problems = check_release(args.solutions, args.chapters)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{args.chapters}/ is what `attn release` writes from {args.solutions}/")
        return 1 if problems else 0
    if args.execute_solutions:
        for path in _solution_paths(args.solutions, args.notebooks):
            execute_file(path, profile="smoke")
            print(f"executed {path.name}")
    release(args.solutions, args.chapters, args.notebooks or None)
    return 0
