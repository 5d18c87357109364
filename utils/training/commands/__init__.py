"""The ``attn train``, ``attn translate`` and ``attn evaluate`` subcommands (one module each).

Each module has ``configure(parser)`` and ``run(args) -> int``, as ``utils.course.cli`` expects.
Shared here: the model, device and thread options, and error printing.
"""

from __future__ import annotations

import argparse

import torch

from utils.command_line import fail, int_at_least, number_in, path_text  # noqa: F401 (used by the commands)
from utils.pretrained import PRETRAINED_NAMES, load_pretrained
from utils.training.checkpoint import load_checkpoint


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    parser.add_argument("--threads", type=int_at_least(1), metavar="N",
                        help="CPU threads for torch (default: torch's choice)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint PATH`` or ``--pretrained NAME``: exactly one."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="PATH", type=path_text,
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
