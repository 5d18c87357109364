"""Run-time choices shared by notebooks, training and the CLI: profile, seeds, device.

Standard library and torch only (see the dependency rule in DESIGN §4).
"""

from __future__ import annotations

import os
import random

import torch

from utils.validate import require_int

PROFILES = ("smoke", "cpu", "gpu")


def get_profile(profile: str | None = None) -> str:
    """The run profile: ``profile`` if given, else ``$COURSE_PROFILE``, else by hardware.

    ``smoke`` runs in seconds (nbval, CI), ``cpu`` in minutes on a laptop,
    ``gpu`` is the full run. Unset means ``gpu`` when CUDA is available, else ``cpu``.
    """
    chosen = profile if profile is not None else os.environ.get("COURSE_PROFILE", "").strip()
    if not chosen:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if chosen not in PROFILES:
        raise ValueError(
            f"profile must be one of {', '.join(PROFILES)}; got {chosen!r}"
            + ("" if profile is not None else " (from $COURSE_PROFILE)")
        )
    return chosen


def by_profile(smoke, cpu, gpu, profile: str | None = None):
    """Pick the value for the current profile: ``by_profile(smoke=2, cpu=20, gpu=200)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[get_profile(profile)]


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy (when installed) and torch (CPU and all GPUs)."""
    require_int("seed", seed, at_least=0)
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # the training core runs on torch alone
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (``"cpu"``, ``"cuda"``, ``"cuda:1"``), else CUDA when available."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}") from None
    if chosen.type not in ("cpu", "cuda"):  # meta, mps, xpu...: torch knows them, the course does not run there
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but CUDA is not available here")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered from 0")
    return chosen
