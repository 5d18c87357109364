"""Shared test set-up: the repository root, and a quiet single-threaded torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# two test workers share two cores: one thread each avoids oversubscription
torch.set_num_threads(1)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def cpu_bf16_lstm() -> None:
    """Skip unless an LSTM runs under bf16 autocast on this CPU.

    oneDNN's bf16 LSTM kernel needs AVX-512 (BF16): an AVX2-only CPU has none and raises at the
    first call, and so does every pytest run, which pins oneDNN to AVX2 (../conftest.py). The
    bf16 path is checked on CUDA instead (test_cuda_bf16_autocast_matches_fp32).
    """
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.randn(2, 3, 4))
    except RuntimeError as error:
        pytest.skip(f"no bf16 LSTM kernel on this CPU ({str(error)[:60]}...)")
