"""Attention, Step by Step: the course library.

The training core (``attention``, ``data``, ``seq2seq``, ``train``, ``metrics``)
needs only torch and numpy, so ``import utils`` stays light: the notebook-facing
helpers below are imported on first use.
"""

__all__ = ["check", "hint", "setup_notebook"]


def __getattr__(name):
    if name == "setup_notebook":
        from utils.notebook_setup import setup_notebook

        return setup_notebook
    if name == "check":
        from utils.checks import check

        return check
    if name == "hint":
        from utils.checks import hint

        return hint
    raise AttributeError(f"module 'utils' has no attribute {name!r}")
