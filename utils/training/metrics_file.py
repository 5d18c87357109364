"""``metrics.json``: what a run measured, and on what (device, versions)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch

from utils.atomic import atomic_open

METRICS_NAME = "metrics.json"


def cpu_name() -> str:
    """The CPU model, e.g. "AMD EPYC 7B13" (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment_info(device: torch.device) -> dict:
    """``{"device": {...}, "versions": {...}}`` for ``metrics.json``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        described = {"type": "cuda", "name": torch.cuda.get_device_name(index),
                     "count": torch.cuda.device_count()}
    else:
        described = {"type": device.type, "name": cpu_name(), "threads": torch.get_num_threads()}
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": f"{platform.system()} {platform.machine()}",
    }
    return {"device": described, "versions": versions, "arguments": sys.argv[1:]}


def write_metrics(metrics: dict, path: str | os.PathLike) -> Path:
    """Write ``metrics`` as indented JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as file:
        json.dump(metrics, file, indent=2, sort_keys=False)
        file.write("\n")
    return path


def read_metrics(path: str | os.PathLike) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    return json.loads(path.read_text(encoding="utf-8"))
