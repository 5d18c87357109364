"""The ``attn`` command: one subcommand per module, imported only when used.

Each module named in ``COMMANDS`` provides ``configure(parser)`` (adds its
arguments) and ``run(args) -> int`` (the exit status). Importing lazily keeps
``attn train`` free of notebook dependencies on a bare PyTorch machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from utils.command_line import describe_os_error, fail

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
