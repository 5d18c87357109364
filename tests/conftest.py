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
