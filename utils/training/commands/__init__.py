"""The ``attn train``, ``attn translate`` and ``attn evaluate`` subcommands (one module each).

Each module has ``configure(parser)`` and ``run(args) -> int``, as ``utils.course.cli`` expects.
Shared here: the model, device and thread options, and error printing.
"""

from __future__ import annotations

import argparse
import sys

import torch

from utils.pretrained import PRETRAINED_NAMES, load_pretrained
from utils.training.checkpoint import load_checkpoint


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


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    parser.add_argument("--threads", type=int_at_least(1), metavar="N",
                        help="CPU threads for torch (default: torch's choice)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint PATH`` or ``--pretrained NAME``: exactly one."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="PATH",
                       help="a checkpoint.pt, or the --out folder of `attn train`")
    which.add_argument("--pretrained", choices=PRETRAINED_NAMES,
                       help="a model shipped with the course, trained on the real fra-eng on a CPU")


def load_model(args: argparse.Namespace, device):
    """``(model, src_vocab, tgt_vocab, checkpoint)`` of ``--checkpoint`` or ``--pretrained``."""
    if args.pretrained is not None:
        return load_pretrained(args.pretrained, device=device)
    return load_checkpoint(args.checkpoint, device=device)


def apply_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1; got {threads}")
        torch.set_num_threads(threads)


def fail(command: str, message: str, status: int = 1) -> int:
    """Print ``attn COMMAND: error: message`` to stderr and return the exit status."""
    print(f"attn {command}: error: {message}", file=sys.stderr)
    return status
