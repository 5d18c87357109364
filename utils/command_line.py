"""What every ``attn`` command shares: argparse types that name the bad value, and error exits.

Commands live in ``utils.data``, ``utils.training``, ``utils.pooling`` and ``utils.course``; these
helpers are apart from the ``attn`` dispatcher (``utils.course.cli``) so that the library's
commands need nothing of the course machinery. Standard library only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def int_at_least(low: int):
    """An argparse ``type``: an integer >= ``low`` (argparse names the option in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}; got {value}")
        return value
    return parse


def number_in(low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = True):
    """An argparse ``type``: a finite number in ``[low, high)`` (or ``(low, …`` with ``low_open``)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    expected = f"a number in {left}{low:g}, {'inf' if high is None else f'{high:g}'}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if value != value or too_low or too_high or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text}")
        return value
    return parse


def path_text(text: str) -> str:
    """An argparse ``type``: a path, never empty (``Path("")`` is the current folder, silently)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a path; got {text!r}")
    return text


def fail(command: str, message: str, status: int = 1) -> int:
    """Print ``attn COMMAND: error: message`` to stderr and return the exit status."""
    print(f"attn {command}: error: {message}", file=sys.stderr)
    return status


def writable_folder(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and check a file can be written there, before any work is done.

    Raises ``ValueError`` naming ``option`` when ``path`` is a file or cannot be written.
    """
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder: give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(f"{option} {_short(str(path))} cannot be written ({error.strerror or error}): "
                         f"choose a folder you can write to") from None
    return path


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def describe_os_error(error: OSError) -> str:
    """One line for an ``OSError`` the command did not expect (a path too long, a disk full, ...)."""
    where = f": {_short(str(error.filename))}" if error.filename is not None else ""
    return f"{error.strerror or error}{where}"
