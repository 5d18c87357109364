"""Transformer encoder and decoder layers, built on the course's ``MultiHeadAttention``.

With the same weights they compute what PyTorch's ``nn.TransformerEncoderLayer`` and
``nn.TransformerDecoderLayer`` (``batch_first=True``) compute, pre-LN (``norm_first=True``, the
default here) or post-LN (``norm_first=False``, the 2017 paper's): tested in
tests/test_transformer_layers.py. ``load_from_torch`` copies a torch layer's weights.

A sublayer (attention or feed-forward) ``f`` is wrapped in a residual connection and a LayerNorm:

    pre-LN:  x + dropout(f(LayerNorm(x)))     the residual path from input to output stays an identity
    post-LN: LayerNorm(x + dropout(f(x)))     every layer's output is normalised

Shapes: ``x`` is ``(batch, steps, d_model)``; the decoder's ``memory`` (the encoder outputs) is
``(batch, src_steps, d_model)``. Masks follow ``MultiHeadAttention``: ``*_valid_lens`` ``(batch,)``
(keys at or beyond the length are padding) or bool ``*_key_padding_mask`` ``(batch, keys)``
(True = padding, torch's convention).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention.multihead import MultiHeadAttention
from utils.validate import require_int, require_number, require_one_of

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _check_sizes(d_model, num_heads, ffn_hiddens, dropout, activation) -> None:
    for name, value in (("d_model", d_model), ("num_heads", num_heads), ("ffn_hiddens", ffn_hiddens)):
        require_int(name, value, at_least=1)
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
    require_number("dropout", dropout, at_least=0, below=1)
    require_one_of("activation", activation, tuple(ACTIVATIONS))


class PositionWiseFFN(nn.Module):
    """``(batch, steps, d_model) -> (batch, steps, d_model)``: the same two-layer MLP at every position.

    ``linear2(dropout(activation(linear1(x))))``, ``ffn_hiddens`` wide in between (4 × d_model in
    the paper). Positions do not mix here: that is attention's job.

    Used in chapter 08 §2; tested in tests/test_transformer_layers.py.
    """

    def __init__(self, d_model: int, ffn_hiddens: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, ffn_hiddens)
        self.linear2 = nn.Linear(ffn_hiddens, d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))


class _Layer(nn.Module):
    """What both layers share: the sizes, the feed-forward block, and the residual wiring."""

    def __init__(self, d_model, num_heads, ffn_hiddens, dropout, activation, norm_first):
        super().__init__()
        _check_sizes(d_model, num_heads, ffn_hiddens, dropout, activation)
        if not isinstance(norm_first, bool):
            raise TypeError(f"norm_first must be a bool; got {norm_first!r}")
        self.d_model, self.num_heads, self.norm_first = d_model, num_heads, norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn = PositionWiseFFN(d_model, ffn_hiddens, dropout, activation)

    def _input(self, x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        """What the sublayer reads: ``LayerNorm(x)`` pre-LN, ``x`` itself post-LN."""
        return norm(x) if self.norm_first else x

    def _add(self, x: torch.Tensor, sublayer_out: torch.Tensor, dropout: nn.Dropout, norm: nn.LayerNorm):
        """The residual connection: ``x + dropout(out)`` pre-LN, ``LayerNorm(x + dropout(out))`` post-LN."""
        x = x + dropout(sublayer_out)
        return x if self.norm_first else norm(x)

    def _check_x(self, x: torch.Tensor) -> None:
        if not torch.is_tensor(x) or x.dim() != 3 or x.shape[-1] != self.d_model:
            got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must have shape (batch, steps, d_model={self.d_model}); got {got}")

    @torch.no_grad()
    def _load_common(self, layer: nn.Module, norms: tuple[str, ...]):
        if layer.norm_first != self.norm_first:
            raise ValueError(f"the torch layer has norm_first={layer.norm_first}; this one {self.norm_first}")
        activation = {F.relu: "relu", F.gelu: "gelu"}.get(layer.activation, repr(layer.activation))
        if activation != self.ffn.activation:
            raise ValueError(f"the torch layer's activation is {activation}; this one's {self.ffn.activation}")
        if any(getattr(layer, name).eps != getattr(self, name).eps for name in norms):
            raise ValueError("the torch layer's LayerNorm eps differs from this one's (layer_norm_eps)")
        self.self_attn.load_from_torch(layer.self_attn)
        for ours, theirs in ((self.ffn.linear1, layer.linear1), (self.ffn.linear2, layer.linear2)):
            ours.load_state_dict(theirs.state_dict())
        for name in norms:
            getattr(self, name).load_state_dict(getattr(layer, name).state_dict())
        return self


class TransformerEncoderLayer(_Layer):
    """Self-attention over the source (padding masked), then the feed-forward block.

    ``forward(x (batch, steps, d_model)) -> (x (batch, steps, d_model), weights)``: ``weights`` is
    ``(batch, heads, steps, steps)`` with ``need_weights=True``, else ``None`` (and the fused
    attention kernel runs). Attribute names follow ``nn.TransformerEncoderLayer``'s (``self_attn``,
    ``norm1``, ``norm2``, ``dropout1``, ``dropout2``; its ``linear1``/``linear2`` are ``ffn.linear1``/``ffn.linear2``).

    Built in chapter 08 §2; tested in tests/test_transformer_layers.py.
    """

    def __init__(self, d_model: int, num_heads: int, ffn_hiddens: int, dropout: float = 0.0,
                 activation: str = "relu", norm_first: bool = True, layer_norm_eps: float = 1e-5):
        super().__init__(d_model, num_heads, ffn_hiddens, dropout, activation, norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *, valid_lens: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = False):
        self._check_x(x)
        h = self._input(x, self.norm1)
        attended, weights = self.self_attn(h, h, h, valid_lens=valid_lens, key_padding_mask=key_padding_mask,
                                           need_weights=need_weights, average_attn_weights=False)
        x = self._add(x, attended, self.dropout1, self.norm1)
        x = self._add(x, self.ffn(self._input(x, self.norm2)), self.dropout2, self.norm2)
        return x, weights

    def load_from_torch(self, layer: nn.TransformerEncoderLayer) -> TransformerEncoderLayer:
        """Copy the weights of an ``nn.TransformerEncoderLayer`` of the same sizes; return self."""
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(f"layer must be an nn.TransformerEncoderLayer; got {type(layer).__name__}")
        return self._load_common(layer, ("norm1", "norm2"))


class LayerCache(NamedTuple):
    """A decoder layer's keys and values, each ``(batch, heads, steps, head_dim)``.

    ``self_k``/``self_v``: of the target positions fed so far (they grow by one per decoding
    step); ``cross_k``/``cross_v``: of the encoder outputs (computed once per sentence).

    Used in chapter 08 §3; tested in tests/test_transformer_layers.py.
    """

    self_k: torch.Tensor
    self_v: torch.Tensor
    cross_k: torch.Tensor
    cross_v: torch.Tensor

    def index_select(self, indices: torch.Tensor) -> LayerCache:
        """The caches of batch rows ``indices`` (beam search reorders its hypotheses)."""
        return LayerCache(*(tensor.index_select(0, indices) for tensor in self))


class TransformerDecoderLayer(_Layer):
    """Causal self-attention, cross-attention over the encoder outputs, then the feed-forward block.

    Cross-attention is Luong's attention (chapter 07) with every target position a query at once:
    queries from the decoder, keys and values from ``memory``.

    ``forward(x (batch, steps, d_model), memory, …) -> (x, cache, cross_weights)``:

    - ``cache``: a ``LayerCache`` of the positions before ``x`` (``None``: ``x`` starts at position 0,
      and ``memory`` is needed). ``x`` attends to the cached positions and causally to itself; the
      returned cache holds ``x``'s keys and values too. Feeding a target one step at a time with
      the cache gives the same outputs as feeding it whole (tested).
    - ``cross_weights``: ``(batch, heads, steps, src_steps)`` with ``need_weights=True``, else ``None``.

    Attribute names follow ``nn.TransformerDecoderLayer``'s, with ``cross_attn`` for its
    ``multihead_attn``.

    Built in chapter 08 §3; tested in tests/test_transformer_layers.py.
    """

    def __init__(self, d_model: int, num_heads: int, ffn_hiddens: int, dropout: float = 0.0,
                 activation: str = "relu", norm_first: bool = True, layer_norm_eps: float = 1e-5):
        super().__init__(d_model, num_heads, ffn_hiddens, dropout, activation, norm_first)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def start_cache(self, memory: torch.Tensor) -> LayerCache:
        """The cache before the first target position: no self keys yet, the memory's cross keys."""
        if not torch.is_tensor(memory) or memory.dim() != 3 or memory.shape[-1] != self.d_model:
            got = tuple(memory.shape) if torch.is_tensor(memory) else type(memory).__name__
            raise ValueError(f"memory must have shape (batch, src_steps, d_model={self.d_model}); got {got}")
        cross_k, cross_v = self.cross_attn.project_keys_values(memory, memory)
        empty = cross_k.new_zeros(cross_k.shape[0], self.num_heads, 0, cross_k.shape[-1])
        return LayerCache(empty, empty, cross_k, cross_v)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, *, cache: LayerCache | None = None,
                memory_valid_lens: torch.Tensor | None = None, memory_key_padding_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None, need_weights: bool = False):
        """``tgt_key_padding_mask``: ``(batch, cached + steps)`` bool, True = a target padding position
        (causality already hides padding that follows a position; torch's layer accepts it too)."""
        self._check_x(x)
        if cache is None:
            if memory is None:
                raise ValueError("give memory (the encoder outputs) or a cache from start_cache(memory)")
            cache = self.start_cache(memory)
        h = self._input(x, self.norm1)
        attended, self_k, self_v = self._self_attention(h, cache, tgt_key_padding_mask)
        x = self._add(x, attended, self.dropout1, self.norm1)
        attended, weights = self.cross_attn.attend(
            self._input(x, self.norm2), cache.cross_k, cache.cross_v, valid_lens=memory_valid_lens,
            key_padding_mask=memory_key_padding_mask, need_weights=need_weights, average_attn_weights=False)
        x = self._add(x, attended, self.dropout2, self.norm2)
        x = self._add(x, self.ffn(self._input(x, self.norm3)), self.dropout3, self.norm3)
        return x, LayerCache(self_k, self_v, cache.cross_k, cache.cross_v), weights

    def _self_attention(self, h: torch.Tensor, cache: LayerCache, tgt_key_padding_mask):
        """``h (batch, steps, d_model)`` at positions ``past .. past + steps - 1`` attends to every
        earlier position and to itself; returns the output and the grown self-attention keys/values."""
        past, steps = cache.self_k.shape[2], h.shape[1]
        k, v = self.self_attn.project_keys_values(h, h)  # (batch, heads, steps, head_dim)
        if past:
            k, v = torch.cat([cache.self_k, k], 2), torch.cat([cache.self_v, v], 2)
        causal = dict(is_causal=True) if past == 0 else {}
        if past and steps > 1:  # query i (position past + i) sees keys 0 .. past + i
            causal = dict(attn_mask=torch.ones(steps, past + steps, dtype=torch.bool, device=h.device)
                          .triu(diagonal=past + 1))
        attended, _ = self.self_attn.attend(h, k, v, key_padding_mask=tgt_key_padding_mask,
                                            need_weights=False, **causal)
        return attended, k, v

    def load_from_torch(self, layer: nn.TransformerDecoderLayer) -> TransformerDecoderLayer:
        """Copy the weights of an ``nn.TransformerDecoderLayer`` of the same sizes; return self."""
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise TypeError(f"layer must be an nn.TransformerDecoderLayer; got {type(layer).__name__}")
        self.cross_attn.load_from_torch(layer.multihead_attn)
        return self._load_common(layer, ("norm1", "norm2", "norm3"))
