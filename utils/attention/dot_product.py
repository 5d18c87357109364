"""Scaled dot-product attention, with the masked-softmax path and PyTorch's fused SDPA path.

Shapes: queries ``(batch, queries, d)``, keys ``(batch, keys, d)``, values ``(batch, keys, v)``
(extra leading axes such as heads are allowed: ``(batch, heads, queries, d)`` …), valid_lens
``None``, ``(batch,)`` or ``(batch, queries)``; the output is ``(batch, queries, v)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention.masking import (
    keep_from_lengths,
    masked_softmax,
    without_empty_rows,
    zero_unseen_keys,
)
from utils.attention.qkv import require_queries_keys_values
from utils.validate import require_number


def dot_product_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``queries @ keys^T / sqrt(d)``: ``(batch, ..., queries, keys)``."""
    # dividing by sqrt(d) keeps the scores' variance near 1 whatever d is (chapter 02)
    return queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])


def sdpa_with_valid_lens(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                         valid_lens: torch.Tensor | None = None, dropout_p: float = 0.0) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` with a valid-length mask; fully masked rows give zeros.

    A query that may see no key would be softmax(-inf, …, -inf) = NaN in some SDPA kernels
    (and NaN gradients in others), so such rows attend to every key inside the kernel and
    their outputs are zeroed afterwards, exactly like ``masked_softmax``'s zero weights.
    """
    if valid_lens is None:
        return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p)
    keep = keep_from_lengths((*queries.shape[:-1], keys.shape[-2]), valid_lens, queries.device)
    # a padded key holding inf would make its (masked) score NaN inside the kernel
    keys, values = zero_unseen_keys(keys, keep), zero_unseen_keys(values, keep)
    keep, empty = without_empty_rows(keep)  # (..., queries, keys), (..., queries, 1)
    output = F.scaled_dot_product_attention(queries, keys, values, attn_mask=keep, dropout_p=dropout_p)
    return output.masked_fill(empty, 0.0)


def scores_in_float32(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``dot_product_scores`` computed in float32 at least: in float16, a product of two vectors of
    64 numbers near 100 overflows to inf (the fused kernels accumulate in float32 too)."""
    if queries.dtype in (torch.float16, torch.bfloat16):
        return dot_product_scores(queries.float(), keys.float())
    return dot_product_scores(queries, keys)


class DotProductAttention(nn.Module):
    """Scaled dot-product attention: ``softmax(Q K^T / sqrt(d)) V`` over the valid keys.

    Args:
        dropout: probability of dropping an attention weight in training (as d2l does).
        need_weights: the default for ``forward``. True: compute the weights explicitly with
            ``masked_softmax`` and keep them in ``self.attention_weights`` for plotting.
            False: call the fused ``F.scaled_dot_product_attention`` (faster, less memory on
            long sequences) and set ``self.attention_weights = None``.

    ``forward(queries, keys, values, valid_lens=None, need_weights=None)`` returns the output
    ``(batch, queries, v)``; ``need_weights`` overrides the constructor's choice for one call.
    Both paths give the same output (in eval mode; dropout draws different masks).

    Built in chapter 02 §3; tested in tests/test_dot_product_attention.py,
    tests/test_attention_hostile.py.
    """

    def __init__(self, dropout: float = 0.0, need_weights: bool = True):
        super().__init__()
        require_number("dropout", dropout, at_least=0, below=1)
        self.dropout = nn.Dropout(dropout)
        self.need_weights = need_weights
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None, need_weights: bool | None = None) -> torch.Tensor:
        require_queries_keys_values(queries, keys, values)
        if need_weights is None:
            need_weights = self.need_weights
        if not need_weights:
            self.attention_weights = None
            dropout_p = self.dropout.p if self.training else 0.0
            return sdpa_with_valid_lens(queries, keys, values, valid_lens, dropout_p=dropout_p)
        scores = scores_in_float32(queries, keys)  # (batch, ..., queries, keys)
        keep = keep_from_lengths(scores.shape, valid_lens, scores.device)  # built once, used twice
        self.attention_weights = masked_softmax(scores, keep=keep).to(queries.dtype)
        return self.dropout(self.attention_weights) @ zero_unseen_keys(values, keep)  # (batch, ..., queries, v)
