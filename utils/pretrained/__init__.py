"""The translators shipped with the course, trained on the real fra-eng corpus on a 2-core CPU.

- ``luong``: the Luong attention model (chapter 07); ``plain``: the same recipe and sizes
  without attention (chapter 06); ``transformer``: chapter 08's Transformer, on the same data and
  CPU budget. All three were trained by ``attn train --profile cpu-real`` (``results/real_fra_eng.md``
  and ``results/transformer_fra_eng.md`` have the commands and the measurements) and exported in
  fp16 by ``export_pretrained``.
- ``fra-eng-test.tsv``: the held-out test split they were scored on (``English<TAB>French``),
  rebuilt from the checkpoints' data spec. The sentences are from Tatoeba via
  manythings.org/anki, CC-BY 2.0 (France): see ``ABOUT.md`` beside this file.

    >>> model, src_vocab, tgt_vocab, info = load_pretrained("luong")
    >>> translate(model, ["I am cold."], src_vocab, tgt_vocab)[0].text

Standard library and torch only, so ``attn translate --pretrained luong`` runs on a bare
PyTorch machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from utils.atomic import atomic_open
from utils.data import load_fra_eng
from utils.training.checkpoint import FORMAT_VERSION, load_checkpoint, read_checkpoint, save_atomic
from utils.training.config import DataSpec, spec_splits

PRETRAINED_DIR = Path(__file__).resolve().parent
PRETRAINED_NAMES = ("luong", "plain", "transformer")
TEST_SPLIT_NAME = "fra-eng-test.tsv"


def pretrained_path(name: str) -> Path:
    """The shipped checkpoint file of ``name`` (one of ``PRETRAINED_NAMES``)."""
    if name not in PRETRAINED_NAMES:
        raise ValueError(f"pretrained model must be one of {PRETRAINED_NAMES}; got {name!r}")
    return PRETRAINED_DIR / f"{name}.pt"


def load_pretrained(name: str, device="cpu"):
    """``(model, src_vocab, tgt_vocab, checkpoint)`` of the shipped model ``name``, in eval mode.

    The weights are stored in fp16 and loaded into a float32 model (``load_state_dict``
    casts), so it runs wherever float32 does.

    Used in chapter 06 §10, chapter 07 §8 and chapter 08 §6; tested in tests/test_pretrained.py.
    """
    return load_checkpoint(pretrained_path(name), device=device)


def read_pairs_tsv(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(English, French)`` pairs of a ``English<TAB>French`` file (``load_fra_eng``'s parser:
    2 or 3 columns, malformed lines reported by number)."""
    return load_fra_eng(path, strict=True)


def pretrained_test_pairs() -> list[tuple[str, str]]:
    """The held-out test split the shipped models were scored on, in split order."""
    return read_pairs_tsv(PRETRAINED_DIR / TEST_SPLIT_NAME)


def write_pairs_tsv(pairs, path: str | os.PathLike) -> Path:
    """Write ``pairs`` as ``English<TAB>French`` lines (UTF-8, ``\\n``), atomically."""
    path = Path(path)
    for index, (english, french) in enumerate(pairs):
        if any(c in text for text in (english, french) for c in "\t\n\r"):
            raise ValueError(f"pairs[{index}] holds a tab or a line break: {(english, french)!r}")
    with atomic_open(path, "w", encoding="utf-8") as file:
        file.writelines(f"{english}\t{french}\n" for english, french in pairs)
    return path


def export_pretrained(checkpoint_path: str | os.PathLike, out_path: str | os.PathLike, *,
                      corpus: str | os.PathLike | None = None, test_split_path=None) -> dict:
    """Write a training checkpoint as a small shipped one: fp16 weights, vocabularies, configs.

    The optimizer, scheduler and RNG states are dropped (nothing to resume). The data spec is
    kept without the training machine's file path: ``source`` becomes ``"fra-eng"`` and the
    digest of the pairs (``pairs_sha256``) says which corpus it was. With ``test_split_path``,
    the test split is rebuilt from that spec (from ``corpus``, a local copy of the same pairs)
    and written there, so the shipped split is exactly the one the data spec describes.
    Returns the exported dict.
    """


    checkpoint = read_checkpoint(checkpoint_path)
    spec = dict(checkpoint["data_spec"] or {})
    if spec.get("source") not in ("fra-eng", "file") or not spec.get("pairs_sha256"):
        raise ValueError("only a checkpoint trained on fra-eng with a recorded pairs_sha256 can be "
                         f"exported; its data spec is {spec}")
    shipped_spec = {**spec, "source": "fra-eng", "path": None}
    if test_split_path is not None:
        local = DataSpec.from_dict({**spec, "source": "file", "path": str(corpus)} if corpus
                                   else shipped_spec)
        write_pairs_tsv(spec_splits(local).test, test_split_path)
    exported = {
        "format": FORMAT_VERSION,
        "kind": "pretrained",
        "step": checkpoint["step"],
        "model_state": {name: tensor.half() if tensor.is_floating_point() else tensor
                        for name, tensor in checkpoint["model_state"].items()},
        "model_config": checkpoint["model_config"],
        "train_config": checkpoint["train_config"],
        "data_spec": dataclasses.asdict(DataSpec.from_dict(shipped_spec)),
        "src_vocab": checkpoint["src_vocab"],
        "tgt_vocab": checkpoint["tgt_vocab"],
        "run": {key: checkpoint["run"][key] for key in ("step", "tokens", "train_seconds", "wall_seconds")
                if key in checkpoint["run"]},
    }
    save_atomic(exported, out_path)
    return exported


def _cli(argv=None) -> int:
    """``python -m utils.pretrained RUN_DIR NAME [--corpus fra.txt]``: export a run as ``NAME.pt``."""
    parser = argparse.ArgumentParser(prog="python -m utils.pretrained", description=_cli.__doc__)
    parser.add_argument("run", help="the --out folder (or checkpoint.pt) of `attn train --profile cpu-real`")
    parser.add_argument("name", choices=PRETRAINED_NAMES)
    parser.add_argument("--corpus", help="the fra.txt it was trained on (to rebuild and write the test split)")
    parser.add_argument("--out-dir", default=str(PRETRAINED_DIR))
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    test_path = out_dir / TEST_SPLIT_NAME if args.corpus else None
    export_pretrained(args.run, out_dir / f"{args.name}.pt", corpus=args.corpus, test_split_path=test_path)
    size = (out_dir / f"{args.name}.pt").stat().st_size
    print(f"wrote {out_dir / f'{args.name}.pt'} ({size / 1e6:.1f} MB)"
          + (f" and {test_path}" if test_path else ""))
    return 0


__all__ = [
    "PRETRAINED_DIR",
    "PRETRAINED_NAMES",
    "TEST_SPLIT_NAME",
    "export_pretrained",
    "load_pretrained",
    "pretrained_path",
    "pretrained_test_pairs",
    "read_pairs_tsv",
    "write_pairs_tsv",
]
