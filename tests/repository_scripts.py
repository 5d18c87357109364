"""A script of the repository loaded as a module, for the tests of its functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_script(relative: str):
    """``relative`` (``benchmarks/`` and ``scripts/`` are not packages) as a module."""
    script = Path(__file__).resolve().parent.parent / relative
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
