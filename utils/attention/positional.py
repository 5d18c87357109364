"""Sinusoidal positional encoding (Vaswani et al., 2017, §3.5): where each token sits, as features.

Self-attention alone is permutation-equivariant: permute the input positions and the outputs
are permuted the same way, nothing else changes (chapter 05's test). Word order matters for
translation, so the Transformer adds to each embedding a vector that depends on its position:

    P[pos, 2i]     = sin(pos / 10000 ** (2i / d_model))
    P[pos, 2i + 1] = cos(pos / 10000 ** (2i / d_model))

Each pair of features is a clock of its own frequency, from one turn every 2π positions
(``i = 0``) to one turn every ``2π · 10000`` positions; ``P[pos + k]`` is a fixed rotation of
``P[pos]`` for every ``pos``, so attention can learn relative offsets.

Shapes: ``sinusoidal_positions(num_positions, d_model)`` is ``(num_positions, d_model)``;
``PositionalEncoding`` takes and returns ``(batch, steps, d_model)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from utils.validate import require_int


def sinusoidal_positions(num_positions: int, d_model: int, *, offset: int = 0, device=None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(num_positions, d_model)``: the encodings of positions ``offset .. offset + num_positions - 1``.

    Computed in float64 and then cast, so position 500 is as exact as position 5. An odd
    ``d_model`` drops the last cosine feature.

    Used in chapter 08 §1; tested in tests/test_transformer_layers.py.
    """
    for name, value, low in (("num_positions", num_positions, 0), ("d_model", d_model, 1), ("offset", offset, 0)):
        require_int(name, value, at_least=low)
    positions = torch.arange(offset, offset + num_positions, dtype=torch.float64, device=device)[:, None]
    # 1 / 10000 ** (2i / d_model) for i = 0 .. ceil(d_model / 2) - 1
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64, device=device)
                            * (-math.log(10000.0) / d_model))
    angles = positions * frequencies  # (num_positions, ceil(d_model / 2))
    encoding = torch.empty(num_positions, d_model, dtype=torch.float64, device=device)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return encoding.to(dtype)


class PositionalEncoding(nn.Module):
    """``x (batch, steps, d_model)`` -> ``x + P[offset : offset + steps]``, same shape and dtype.

    ``offset``: the position of ``x``'s first step (a decoder that feeds one token at a time
    passes how many it has fed already). No parameters and no length limit: the encodings
    of the first ``steps`` positions are computed once and kept until a longer input comes.

    Built in chapter 08 §1; tested in tests/test_transformer_layers.py.
    """

    def __init__(self, d_model: int):
        super().__init__()
        require_int("d_model", d_model, at_least=1)
        self.d_model = d_model
        # not a buffer: nothing to save in a checkpoint, and it grows on demand
        self._table = torch.empty(0, d_model)

    def table(self, length: int, device) -> torch.Tensor:
        """``(>= length, d_model)`` float32 encodings of positions ``0, 1, …`` on ``device``."""
        if self._table.shape[0] < length or self._table.device != torch.device(device):
            size = max(length, 2 * self._table.shape[0], 64)
            self._table = sinusoidal_positions(size, self.d_model, device=device)
        return self._table

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() != 3 or x.shape[-1] != self.d_model:
            got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must have shape (batch, steps, d_model={self.d_model}); got {got}")
        require_int("offset", offset, at_least=0)
        steps = x.shape[1]
        return x + self.table(offset + steps, x.device)[offset : offset + steps].to(x.dtype)
