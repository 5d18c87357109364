"""Atomic checkpoint writes: a crash while saving leaves the previous checkpoint intact."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from utils.training import checkpoint as checkpoint_module
from utils.training.checkpoint import FORMAT_VERSION, read_checkpoint, save_atomic


def state(value: float) -> dict:
    return {"format": FORMAT_VERSION, "step": int(value), "weights": torch.full((1000,), value)}


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name != "checkpoint.pt")


def test_save_atomic_round_trip(tmp_path):
    path = save_atomic(state(1.0), tmp_path / "deep" / "checkpoint.pt")
    loaded = read_checkpoint(path)
    assert loaded["step"] == 1 and torch.equal(loaded["weights"], torch.full((1000,), 1.0))
    assert read_checkpoint(tmp_path / "deep")["step"] == 1  # a folder means its checkpoint.pt
    save_atomic(state(2.0), path)
    assert read_checkpoint(path)["step"] == 2 and leftovers(path.parent) == []


def test_error_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_atomic(state(1.0), tmp_path / "checkpoint.pt")

    def half_then_crash(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save_atomic(state(2.0), path)
    monkeypatch.undo()
    assert read_checkpoint(path)["step"] == 1
    assert leftovers(tmp_path) == []  # the temporary file is cleaned up


def test_process_killed_while_saving_keeps_the_previous_checkpoint(tmp_path):
    # a real crash: the process dies (no cleanup, no exception handling) half-way through the write
    path = save_atomic(state(1.0), tmp_path / "checkpoint.pt")
    script = textwrap.dedent(f"""
        import os, torch
        from utils.training import checkpoint
        def half_then_die(obj, file):
            file.write(b"PK\\x03\\x04 half a checkpoint")
            file.flush()
            os._exit(9)
        checkpoint.torch.save = half_then_die
        checkpoint.save_atomic({{"format": 1, "step": 2}}, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    assert read_checkpoint(path)["step"] == 1  # untouched
    # the dead process's temporary file is left next to it, never under the checkpoint's name
    assert [name.endswith(".tmp") for name in leftovers(tmp_path)] == [True]


def test_unreadable_checkpoints_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a translator checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
