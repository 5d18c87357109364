"""Attention, Step by Step: the course library.

Models and training (``attention``, ``seq2seq``, ``pooling``, ``data``, ``training``, ``bleu``)
need only torch, numpy and the standard library; the course machinery (the exercise checker,
grading, releasing, ``attn``) lives in ``utils.course``. The three names a notebook uses are
imported here: ``utils.setup_notebook``, ``utils.check`` and ``utils.hint``.
"""

from utils.course.checks import check, hint
from utils.course.notebook_setup import setup_notebook

__all__ = ["check", "hint", "setup_notebook"]
