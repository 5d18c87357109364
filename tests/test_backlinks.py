"""Every public piece of the learner-facing library says where it is taught and tested, truly.

A docstring line such as ``Built in chapter 05 §2; tested in tests/test_multihead_attention.py.``
(d2l's "Defined in" lines) is checked here: the chapter's section mentions the name, and each
test file exists and mentions it. So a back-link cannot silently go stale when code moves.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("utils.attention", "utils.seq2seq", "utils.pooling", "utils.bleu")
# "Built in chapter 06 §3 as ``Encoder``": the section must show the name (or what ``as``/``by`` names)
CHAPTER = re.compile(r"chapter (\d\d) §(\d+|Exercises)(?:\s+(?:as|by)\s+``([^`]+)``)?")
TESTED = re.compile(r"tested in\s+((?:tests/test_\w+\.py(?:,\s+)?)+)\.")


def back_link(doc: str) -> str:
    """The docstring's last paragraph, where the back-link lives."""
    return doc.strip().split("\n\n")[-1]


def public_objects():
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = getattr(module, "__all__", [name for name in dir(module) if not name.startswith("_")])
        for name in names:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith("utils."):
                yield f"{package}.{name}", name, obj


@cache
def section_text(chapter: str, section: str) -> str:
    """The text of chapter ``chapter``'s section ``## <section>.`` or ``## Exercises`` (code and prose)."""
    (path,) = (ROOT / "solutions").glob(f"{chapter}_*.ipynb")
    text, current = [], None
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        heading = re.search(r"^## (\d+(?=\.)|Exercises)", source, re.M) if cell["cell_type"] == "markdown" else None
        if heading or (cell["cell_type"] == "markdown" and re.search(r"^## ", source, re.M)):
            current = heading.group(1) if heading else None  # a section of its own, e.g. ## Summary
        if current == section:
            text.append(source)
    assert text, f"chapter {chapter} has no section {section}"
    return "\n".join(text)


@pytest.mark.parametrize(("qualified", "name", "obj"),
                         [pytest.param(*row, id=row[0]) for row in public_objects()])
def test_docstring_links_to_its_chapter_and_tests(qualified, name, obj):
    link = back_link(inspect.getdoc(obj) or "")
    tested = TESTED.search(link)
    assert tested and (CHAPTER.search(link) or "No chapter builds it" in link), \
        f"{qualified}: its docstring's last paragraph is no 'Built in chapter NN §M; tested in tests/...' line"
    for chapter, section, shown_as in CHAPTER.findall(link):
        shown = shown_as or name
        pattern = rf"\b{re.escape(shown)}\b" if shown.isidentifier() else re.escape(shown)
        assert re.search(pattern, section_text(chapter, section)), \
            f"{qualified}: chapter {chapter} §{section} does not show {shown}"
    for test_file in re.split(r",\s+", tested.group(1)):
        path = ROOT / test_file
        assert path.exists(), f"{qualified}: {test_file} does not exist"
        assert re.search(rf"\b{name}\b", path.read_text(encoding="utf-8")), f"{test_file} never uses {name}"
