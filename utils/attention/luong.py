"""Luong et al. (2015) "global" attention: a multiplicative score between a decoder output and
every encoder output.

Built in chapter 07 §3 (the decoder that uses it: ``utils.seq2seq.LuongDecoder``); tested in
tests/test_luong_attention.py.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.masking import masked_softmax
from utils.attention.qkv import require_layer_dtype, require_queries_keys_values
from utils.validate import require_int

SCORES = ("dot", "general")


class LuongAttention(nn.Module):
    """``score(h_t, h_s) = h_t · h_s`` ("dot") or ``h_t · W_a h_s`` ("general"), masked softmax over
    the valid source steps, then the weighted sum of the values.

    "general" is computed as ``(W_a^T h_t) · h_s``: the queries are projected once, the encoder
    outputs (often many more) need no projection. ``forward(queries (batch, T, H), keys (batch, S,
    H), values (batch, S, H_v), valid_lens (batch,) or None) -> context (batch, T, H_v)``; the
    weights ``(batch, T, S)`` are kept in ``self.attention_weights`` for plotting.

    Built in chapter 07 §3; tested in tests/test_luong_attention.py.
    """

    def __init__(self, num_hiddens: int, score: str = "general"):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score must be 'dot' or 'general'; got {score!r}")
        require_int("num_hiddens", num_hiddens, at_least=1)
        self.score, self.num_hiddens = score, num_hiddens
        self.W_a = nn.Linear(num_hiddens, num_hiddens, bias=False) if score == "general" else None
        self.attention_weights: torch.Tensor | None = None

    def scores(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``(batch, T, S)``: every query against every key."""
        projected = self.W_a(queries) if self.W_a is not None else queries
        return torch.bmm(projected, keys.to(projected.dtype).transpose(1, 2))

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        for name, tensor in (("queries", queries), ("keys", keys), ("values", values)):
            if not torch.is_tensor(tensor) or tensor.dim() != 3:
                got = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
                raise ValueError(f"{name} must have shape (batch, steps, features); got {got}")
        size = self.num_hiddens if self.W_a is not None else None  # "dot": queries and keys share it
        require_queries_keys_values(queries, keys, values, query_size=size, key_size=size)
        if self.W_a is not None:
            require_layer_dtype(self, queries=queries)
        scores = self.scores(queries, keys)
        self.attention_weights = masked_softmax(scores, valid_lens)  # zero on padded source steps
        return torch.bmm(self.attention_weights.to(scores.dtype), values.to(scores.dtype))
