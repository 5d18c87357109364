"""Additive (MLP, Bahdanau) attention: ``score(q, k) = w_v^T tanh(W_q q + W_k k)``.

Shapes: queries ``(batch, queries, query_size)``, keys ``(batch, keys, key_size)``, values
``(batch, keys, v)`` (extra leading axes such as heads are allowed), valid_lens ``None``,
``(batch,)`` or ``(batch, queries)``; the output is ``(batch, queries, v)``.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.masking import keep_from_lengths, masked_softmax, zero_unseen_keys
from utils.attention.qkv import require_layer_dtype, require_queries_keys_values
from utils.validate import require_int, require_number


class AdditiveAttention(nn.Module):
    """Additive attention; queries and keys may have different sizes.

    The parameters are named like d2l's (``W_q``, ``W_k``, ``w_v``, linear maps without bias),
    so a state dict loads into a materialised ``d2l.AdditiveAttention`` and back.
    ``forward(queries, keys, values, valid_lens=None)`` returns the output and keeps the
    weights ``(batch, queries, keys)`` in ``self.attention_weights``.

    Cost: the scores pass through a ``(batch, queries, keys, num_hiddens)`` intermediate,
    ``num_hiddens`` times the memory of the scores themselves (chapter 03).

    Built in chapter 03 §3; tested in tests/test_additive_attention.py,
    tests/test_attention_hostile.py.
    """

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__()
        for name, size in (("key_size", key_size), ("query_size", query_size), ("num_hiddens", num_hiddens)):
            require_int(name, size, at_least=1)
        require_number("dropout", dropout, at_least=0, below=1)
        self.key_size, self.query_size, self.num_hiddens = key_size, query_size, num_hiddens
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def scores(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``(batch, ..., queries, keys)`` additive scores, every query against every key."""
        projected_queries = self.W_q(queries)  # (batch, ..., queries, hiddens)
        projected_keys = self.W_k(keys)  # (batch, ..., keys, hiddens)
        # (batch, ..., queries, 1, hiddens) + (batch, ..., 1, keys, hiddens)
        # -> (batch, ..., queries, keys, hiddens): all pairs at once, by broadcasting
        features = torch.tanh(projected_queries.unsqueeze(-2) + projected_keys.unsqueeze(-3))
        return self.w_v(features).squeeze(-1)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        require_queries_keys_values(queries, keys, values, query_size=self.query_size,
                                  key_size=self.key_size)
        require_layer_dtype(self, queries=queries, keys=keys)
        scores = self.scores(queries, keys)
        keep = keep_from_lengths(scores.shape, valid_lens, scores.device)  # built once, used twice
        self.attention_weights = masked_softmax(scores, keep=keep)
        return self.dropout(self.attention_weights) @ zero_unseen_keys(values, keep)  # (batch, ..., queries, v)
