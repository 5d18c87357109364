"""The ``attn`` command: one subcommand per module, imported only when used.

Each module named in ``COMMANDS`` provides ``configure(parser)`` (adds its
arguments) and ``run(args) -> int`` (the exit status). Importing lazily keeps
``attn train`` free of notebook dependencies on a bare PyTorch machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import warnings
from pathlib import Path

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("utils.course.doctor", "check the environment: Python, torch, device, versions, data cache"),
    "release": ("utils.course.notebooks.release", "write chapters/ from solutions/ (exercise stubs)"),
    "data": ("utils.data.command", "where the fra-eng corpus is, whether it verifies, its statistics"),
    "pooling": ("utils.pooling.experiment", "chapter 04: train LSTM classifiers with three poolings, print the table"),
    "grade": ("utils.course.notebooks.grading", "grade a folder of submitted notebooks"),
    "train": ("utils.training.commands.train", "train the translator (profiles, checkpoints, --resume, torchrun)"),
    "translate": ("utils.training.commands.translate", "translate English sentences with a trained checkpoint"),
    "evaluate": ("utils.training.commands.evaluate", "sacreBLEU of a checkpoint on its held-out test split"),
}


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


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attn", description="Attention, Step by Step: course tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        # only the help line here: a command's own arguments are added in main()
        subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        try:
            parser.parse_args(argv)  # --help, or an error that lists the commands
        except SystemExit as exit:
            return exit.code if isinstance(exit.code, int) else 2
        parser.print_help()
        return 0
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"attn {name}", description=COMMANDS[name][1])
    module.configure(sub)
    try:
        args = sub.parse_args(argv[1:])
    except SystemExit as exit:  # argparse printed the usage and the error (or --help)
        return exit.code if isinstance(exit.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning  # a warning is one line, not two with a source line
        try:
            return int(module.run(args) or 0)
        except OSError as error:  # the file system refused (a name too long, a disk full): no traceback
            return fail(name, describe_os_error(error))


if __name__ == "__main__":
    sys.exit(main())
