"""Gated self-attention: a learned, per-feature choice between context and the token itself.

``y = g * attn(x) + (1 - g) * x`` with ``g = sigmoid(W_g x + b_g)``, where ``attn`` is
multi-head self-attention. ``x`` and ``y`` are ``(batch, seq, embed_dim)``; so is ``g``.
A gate near 1 takes the feature from the attended context, near 0 keeps the input.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.multihead import MultiHeadAttention


def gated_mix(x: torch.Tensor, attended: torch.Tensor, gate_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g * attended + (1 - g) * x, g)`` with ``g = sigmoid(gate_logits)``; all ``(batch, seq, features)``.

    Used in chapter 05 §5 by ``GatedSelfAttention``; tested in tests/test_gated_attention.py.
    """
    for name, tensor in (("attended", attended), ("gate_logits", gate_logits)):
        if tensor.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x, {tuple(x.shape)}; got {tuple(tensor.shape)}")
    gate = torch.sigmoid(gate_logits)
    # written as a convex combination: each feature is between the input and the context
    return gate * attended + (1 - gate) * x, gate


class GatedSelfAttention(nn.Module):
    """Self-attention whose output is mixed with its input by a sigmoid gate computed from the input.

    After each forward pass ``last_gate`` holds the gate values ``(batch, seq, embed_dim)``
    (detached), for inspection and plots.

    Built in chapter 05 §5; tested in tests/test_gated_attention.py.
    """

    def __init__(self, embed_dim: int, num_heads: int = 1, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.attention = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, bias=bias)
        self.gate = nn.Linear(embed_dim, embed_dim)  # W_g, b_g: one gate per feature
        self.last_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False, need_weights: bool = False):
        """``x`` ``(batch, seq, embed_dim)`` -> ``(y (batch, seq, embed_dim), weights or None)``.

        The masks mean what they mean in :class:`MultiHeadAttention`; ``weights`` are averaged
        over heads, ``(batch, seq, seq)``, when ``need_weights`` is True.
        """
        attended, weights = self.attention(x, x, x, key_padding_mask=key_padding_mask, valid_lens=valid_lens,
                                           attn_mask=attn_mask, is_causal=is_causal, need_weights=need_weights)
        output, gate = gated_mix(x, attended, self.gate(x))
        self.last_gate = gate.detach()
        return output, weights
