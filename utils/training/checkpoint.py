"""Checkpoints: written atomically, read back into a model and its vocabularies.

A checkpoint is one ``torch.save``d dict of tensors and plain Python values
(``weights_only`` loading works): the model, optimizer and scheduler states,
where the run is (step, epoch, next batch), the RNG states of every rank, and
what is needed to rebuild everything (model and train configs, vocabularies,
data spec).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from utils.atomic import atomic_open
from utils.data import Vocab
from utils.seq2seq import ModelConfig, build_model

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1
# what load_checkpoint needs to rebuild the model
REQUIRED_KEYS = ("model_state", "model_config", "src_vocab", "tgt_vocab")


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` so that a crash at any moment leaves either the old or the new file.

    Writes a temporary file in the same folder (``os.replace`` is atomic only
    within one file system), flushes it to disk with ``fsync``, then renames it
    over ``path``; the folder is fsynced too, so the rename itself survives a
    power cut. On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    with atomic_open(path, "wb") as file:
        torch.save(obj, file)
    return path


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The raw checkpoint dict at ``path`` (``FileNotFoundError`` / ``ValueError`` when unusable)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated or foreign file
        first_line = (str(error).strip().splitlines() or [""])[0][:200]  # torch's messages run to pages
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {first_line})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a translator checkpoint of format {FORMAT_VERSION}")
    return checkpoint


def load_checkpoint(path: str | os.PathLike, device="cpu"):
    """``(model, src_vocab, tgt_vocab, checkpoint)`` from a checkpoint file (or the folder holding one).

    The model is rebuilt from the saved ``ModelConfig``, gets the saved
    weights, is moved to ``device`` and put in eval mode.
    """
    checkpoint = read_checkpoint(path, map_location="cpu")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: it is damaged or was not written by `attn train`")
    try:
        src_vocab = Vocab.from_dict(checkpoint["src_vocab"])
        tgt_vocab = Vocab.from_dict(checkpoint["tgt_vocab"])
        model = build_model(ModelConfig(**checkpoint["model_config"]), len(src_vocab), len(tgt_vocab),
                            pad_id=src_vocab.pad)
        model.load_state_dict(checkpoint["model_state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # edited or mismatched contents
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: its model does not match its saved configuration and vocabularies "
                         f"({type(error).__name__}: {first_line[:300]})") from None
    model.to(device).eval()
    return model, src_vocab, tgt_vocab, checkpoint
