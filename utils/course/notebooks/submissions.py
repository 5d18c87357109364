"""Submitted notebooks for ``attn grade``: finding them, reading them, telling their chapter.

Every file given (or found in a folder given) becomes a :class:`Submission`; one that
cannot be graded (not a notebook, empty, invalid JSON, another chapter's) carries a
``problem`` that the class table shows instead of a grade.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nbformat

from utils.course.notebooks.cells import checked_exercises

MAX_NOTEBOOK_BYTES = 50 * 2**20
_NAME_CHAPTER = re.compile(r"(\d{2})_")
_TITLE_CHAPTER = re.compile(r"^\s*#\s+(\d{2})\s*[·:.\-]", re.MULTILINE)


@dataclass
class Submission:
    path: Path
    file: str = ""  # how the table names it: its path inside the folder given, or as given
    name: str = ""  # unique among the submissions: the stem of its report files
    chapter: int | None = None
    problem: str | None = None  # why it cannot be graded


def find_submissions(paths: list[str | Path], *, exclude: Path | None = None) -> list[tuple[Path, str]]:
    """The files named, and the files inside the folders named (recursively), in a stable order,
    each with how to call it: its path inside the folder given (a file given: as given).

    Hidden files and folders, ``.ipynb_checkpoints`` and anything under ``exclude`` (the
    output folder) are left out; other files are kept so the table can say they are not
    notebooks. A path that does not exist is kept too (its problem says so).
    """
    found: list[tuple[Path, str]] = []
    exclude = exclude.resolve() if exclude is not None else None
    for given in map(Path, paths):
        if given.is_dir():
            for path in sorted(given.rglob("*")):
                relative = path.relative_to(given).parts
                if not path.is_file() or any(part.startswith(".") for part in relative):
                    continue
                if exclude is not None and path.resolve().is_relative_to(exclude):
                    continue
                found.append((path, "/".join(relative)))
        else:
            found.append((given, str(given)))
    unique: dict[Path, tuple[Path, str]] = {}
    for path, file in found:
        unique.setdefault(path.resolve(), (path, file))
    return list(unique.values())


def chapter_from_name(file_name: str) -> int | None:
    """``01_masked_softmax.ipynb`` -> 1; ``None`` when the name does not start with ``NN_``."""
    match = _NAME_CHAPTER.match(file_name)
    return int(match.group(1)) if match else None


def chapter_from_notebook(notebook) -> int | None:
    """The chapter a notebook's content belongs to, or ``None`` when it does not say.

    In order: ``metadata["attn"]["chapter"]``, the exercises its check cells check
    (the most frequent chapter), the ``# NN · Title`` heading of a markdown cell.
    """
    stamped = notebook.get("metadata", {}).get("attn", {})
    if isinstance(stamped, dict) and isinstance(stamped.get("chapter"), int):
        return stamped["chapter"]
    chapters = Counter(int(exercise_id.split(".")[0]) for cell in notebook.cells
                       for exercise_id in checked_exercises(cell))
    if chapters:
        (best, count), *rest = chapters.most_common()
        if not rest or rest[0][1] < count:
            return best
    for cell in notebook.cells:
        if cell.get("cell_type") == "markdown":
            match = _TITLE_CHAPTER.search(str(cell.get("source", "")))
            if match:
                return int(match.group(1))
    return None


def read_notebook(path: Path):
    """The notebook at ``path``; ``ValueError`` saying in plain words why it is not one."""
    if not path.exists():
        raise ValueError("no such file")
    if not path.is_file():
        raise ValueError("not a file")
    if path.suffix != ".ipynb":
        raise ValueError(f"not a notebook: expected a .ipynb file, got {path.suffix or 'no extension'}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError("empty file")
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"too large for a notebook ({size / 2**20:.0f} MB)")
    try:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text)
    except UnicodeDecodeError:
        raise ValueError("not a notebook: the file is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON (line {error.lineno}: {error.msg})") from None
    if isinstance(content, dict) and "cells" not in content and isinstance(content.get("nbformat"), int) \
            and content["nbformat"] < 4:
        raise ValueError(f"a notebook in the old nbformat {content['nbformat']} (cells inside 'worksheets'): "
                         f"convert it with `jupyter nbconvert --to notebook --nbformat 4 FILE`, "
                         f"or open and save it in JupyterLab")
    if not isinstance(content, dict) or "cells" not in content:
        raise ValueError("not a Jupyter notebook: the JSON has no 'cells'")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for malformed notebooks
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"not a valid Jupyter notebook ({first[:200]})") from None
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in notebook.cells):
        raise ValueError("empty notebook: no code cells")
    return notebook


def inspect(path: Path, *, chapter: int | None = None, known_chapters=None, file: str = "") -> Submission:
    """Read ``path`` and decide its chapter: ``chapter`` (``--chapter``), else its file name,
    else its content; a notebook whose content belongs to another chapter is refused.

    ``known_chapters(n)`` says whether chapter ``n`` has exercises (``None``: any).
    """
    submission = Submission(path=path, file=file or str(path))
    try:
        notebook = read_notebook(path)
    except ValueError as error:
        submission.problem = str(error)
        return submission
    content = chapter_from_notebook(notebook)
    wanted = chapter if chapter is not None else chapter_from_name(path.name)
    wanted = wanted if wanted is not None else content
    if wanted is None:
        submission.problem = ("cannot tell the chapter: the file name does not start with NN_ and "
                              "the notebook has no check cells; pass --chapter")
        return submission
    submission.chapter = wanted
    if content is not None and content != wanted:
        submission.problem = f"this notebook is from chapter {content:02d}, not chapter {wanted:02d}"
    elif known_chapters is not None and not known_chapters(wanted):
        submission.problem = f"chapter {wanted:02d} has no exercises to grade"
    return submission


def unique_names(paths: list[Path]) -> list[str]:
    """A distinct report name per path: the file's stem, prefixed by its folder when stems repeat."""
    stems = Counter(path.stem for path in paths)
    names: list[str] = []
    for path in paths:
        name = path.stem or "submission"
        if stems[path.stem] > 1 and path.parent.name:
            name = f"{path.parent.name}-{name}"
        base, number = name, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.append(name)
    return names
