"""Multi-head attention, with the same interface and numbers as ``nn.MultiheadAttention(batch_first=True)``.

Shapes: ``query`` is ``(batch, queries, embed_dim)``, ``key`` and ``value`` are
``(batch, keys, embed_dim)``. Each of the ``num_heads`` heads works on
``head_dim = embed_dim // num_heads`` features, as ``(batch, heads, seq, head_dim)``.

Mask conventions follow ``nn.MultiheadAttention``: in a bool ``key_padding_mask`` or
``attn_mask``, **True means "ignore"**; a float mask is added to the scores. (Note that
``F.scaled_dot_product_attention`` uses the opposite convention for bool masks: True
means "attend". Internally this module builds one ``keep`` mask, True = attend.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention.dot_product import scores_in_float32
from utils.attention.masking import (
    expand_valid_lens,
    length_mask,
    masked_softmax,
    without_empty_rows,
    zero_unseen_keys,
)
from utils.attention.qkv import require_layer_dtype
from utils.validate import require_int, require_number


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq, num_heads * head_dim)`` -> ``(batch, num_heads, seq, head_dim)``.

    The view splits the *feature* axis into ``(num_heads, head_dim)``; the transpose then
    moves heads in front of positions. Both are needed: viewing straight to
    ``(batch * num_heads, seq, head_dim)`` cuts the memory into slabs that mix positions.

    Built in chapter 05 §2; tested in tests/test_multihead_attention.py.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (batch, seq, features); got shape {tuple(x.shape)}")
    batch, seq, features = x.shape
    if features % num_heads:
        raise ValueError(f"the last axis of x ({features}) must be divisible by num_heads={num_heads}")
    return x.view(batch, seq, num_heads, features // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, num_heads, seq, head_dim)`` -> ``(batch, seq, num_heads * head_dim)``, undoing :func:`split_heads`.

    Built in chapter 05 §2; tested in tests/test_multihead_attention.py.
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (batch, heads, seq, head_dim); got shape {tuple(x.shape)}")
    batch, heads, seq, head_dim = x.shape
    # transpose makes the tensor non-contiguous, so reshape (which copies) rather than view
    return x.transpose(1, 2).reshape(batch, seq, heads * head_dim)


def causal_mask(num_queries: int, num_keys: int | None = None, device=None) -> torch.Tensor:
    """``(num_queries, num_keys)`` bool, True where query ``i`` may NOT see key ``j`` (``j > i``).

    The ``nn.MultiheadAttention`` convention (True = ignore), aligned at the top-left like
    ``F.scaled_dot_product_attention(is_causal=True)``.

    Built in chapter 05 §3; tested in tests/test_multihead_attention.py.
    """
    num_keys = num_queries if num_keys is None else num_keys
    require_int("num_queries", num_queries, at_least=0)
    require_int("num_keys", num_keys, at_least=0)
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).triu(diagonal=1)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention.

    ``forward`` returns ``(output, weights)`` like ``nn.MultiheadAttention(batch_first=True)``:
    ``output`` is ``(batch, queries, embed_dim)``; ``weights`` is ``(batch, queries, keys)``
    averaged over heads, ``(batch, heads, queries, keys)`` with ``average_attn_weights=False``,
    or ``None`` with ``need_weights=False`` (then the fused ``F.scaled_dot_product_attention``
    computes the output without materialising the weights).

    One difference from torch: a query that may see no key at all gets zero weights and a
    zero attention output (then the output projection's bias), never NaN.

    Built in chapter 05 §2; tested in tests/test_multihead_attention.py,
    tests/test_attention_hostile.py.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        require_int("embed_dim", embed_dim, at_least=1)
        require_int("num_heads", num_heads, at_least=1)
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} must be divisible by num_heads={num_heads} "
                f"(each head gets embed_dim // num_heads features)"
            )
        require_number("dropout", dropout, at_least=0, below=1)
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                key_padding_mask: torch.Tensor | None = None, valid_lens: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, is_causal: bool = False,
                need_weights: bool = True, average_attn_weights: bool = True):
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(batch, queries, embed_dim)``; key, value: ``(batch, keys, embed_dim)``.
            key_padding_mask: ``(batch, keys)``; bool True = a padding key to ignore, or float (added).
            valid_lens: ``(batch,)`` or ``(batch, queries)``: keys at or beyond it are ignored.
            attn_mask: ``(queries, keys)``, ``(batch * num_heads, queries, keys)`` or
                ``(batch, num_heads, queries, keys)``; bool True = not allowed, or float (added).
            is_causal: query ``i`` sees keys ``0..i`` only (no ``attn_mask`` needed, unlike torch).
            need_weights: return the weights (computed explicitly); False uses the fused kernel.
            average_attn_weights: average the returned weights over heads.
        """
        self._check_inputs(query, key, value)
        k, v = self.project_keys_values(key, value)  # (batch, heads, keys, head_dim) each
        return self.attend(query, k, v, key_padding_mask=key_padding_mask, valid_lens=valid_lens,
                           attn_mask=attn_mask, is_causal=is_causal, need_weights=need_weights,
                           average_attn_weights=average_attn_weights)

    def project_keys_values(self, key: torch.Tensor, value: torch.Tensor):
        """``key``, ``value`` ``(batch, keys, embed_dim)`` -> ``k``, ``v`` ``(batch, heads, keys, head_dim)``.

        What a decoder caches: the projections of keys and values that later queries reuse
        (the encoder outputs for cross-attention, the positions so far for self-attention).
        """
        return split_heads(self.k_proj(key), self.num_heads), split_heads(self.v_proj(value), self.num_heads)

    def attend(self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
               key_padding_mask: torch.Tensor | None = None, valid_lens: torch.Tensor | None = None,
               attn_mask: torch.Tensor | None = None, is_causal: bool = False,
               need_weights: bool = True, average_attn_weights: bool = True):
        """``forward`` with keys and values already projected by :meth:`project_keys_values`.

        ``query``: ``(batch, queries, embed_dim)`` (projected here); ``k``, ``v``: ``(batch, heads,
        keys, head_dim)``. The masks and returns are ``forward``'s; ``forward(query, key, value)``
        is ``attend(query, *project_keys_values(key, value))``.
        """
        batch, num_queries, num_keys = self._check_projected(query, k, v)
        lengths = None  # valid_lens checked here and broadcast to (batch, 1, queries)
        if valid_lens is not None:
            lengths = expand_valid_lens(query.new_empty(()).expand(batch, 1, num_queries, num_keys), valid_lens)
        q = split_heads(self.q_proj(query), self.num_heads)  # (batch, heads, queries, head_dim)
        only_causal = is_causal and key_padding_mask is None and attn_mask is None and valid_lens is None
        keep, bias = self._build_masks(batch, num_queries, num_keys, query.device, q.dtype,
                                       key_padding_mask, attn_mask, is_causal)
        if bias is not None:
            # -inf in a float mask (or -1e9 in float16, which is -inf) forbids the key: move it into
            # the bool mask, so a row it forbids entirely gives zeros on both paths, never NaN
            allowed = bias > float("-inf")
            keep = allowed if keep is None else keep & allowed
            bias = bias.masked_fill(~allowed, 0.0)
        if keep is not None and valid_lens is not None:
            # one bool mask for everything, so a row that two masks empty together is caught
            keep, valid_lens, lengths = keep & length_mask(lengths, num_keys), None, None
        # padded keys and values may hold inf or NaN, and 0 * NaN is NaN: clear the unseen ones
        seen = keep if keep is not None else (None if lengths is None else length_mask(lengths, num_keys))
        k, v = zero_unseen_keys(k, seen), zero_unseen_keys(v, seen)
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            weights = self._weights(q, k, keep, bias, valid_lens)  # (batch, heads, queries, keys)
            if dropout:  # like torch, the returned weights are the ones used (after dropout)
                weights = F.dropout(weights, p=dropout)
            attended = weights @ v  # (batch, heads, queries, head_dim)
        elif only_causal:
            # no other mask: let the kernel apply causality itself, without a mask tensor
            weights = None
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            weights = None
            attended = self._fused(q, k, v, keep, bias, lengths, dropout)
        output = self.out_proj(merge_heads(attended))  # (batch, queries, embed_dim)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return output, weights

    # -- the two paths ------------------------------------------------------------------
    def _weights(self, q, k, keep, bias, valid_lens):
        """``(batch, heads, queries, keys)`` softmax weights, via :func:`masked_softmax`."""
        scores = scores_in_float32(q, k)  # float16 products of large vectors would overflow
        if bias is not None:
            scores = scores + bias
        return masked_softmax(scores, valid_lens, keep=keep).to(q.dtype)

    def _fused(self, q, k, v, keep, bias, lengths, dropout):
        """``(batch, heads, queries, head_dim)`` from ``F.scaled_dot_product_attention``."""
        if lengths is not None:  # only when there is no other bool mask (see forward)
            keep = length_mask(lengths, k.shape[-2])  # (batch, 1, queries, keys)
        empty = None
        if keep is not None:  # rows with nothing to see: attend anywhere, zeroed below
            keep, empty = without_empty_rows(keep)  # empty: (batch|1, heads|1, queries, 1)
        if bias is None:
            mask = keep  # SDPA's bool convention is the opposite of torch MHA's: True = attend
        else:
            mask = bias if keep is None else bias.masked_fill(~keep, float("-inf"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return attended if empty is None else attended.masked_fill(empty, 0.0)

    # -- checks and masks ---------------------------------------------------------------
    def _check_inputs(self, query, key, value):
        for name, tensor in (("query", query), ("key", key), ("value", value)):
            if not torch.is_tensor(tensor):
                raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
            if tensor.dim() != 3 or tensor.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"{name} must have shape (batch, seq, embed_dim={self.embed_dim}); "
                    f"got shape {tuple(tensor.shape)}"
                )
        require_layer_dtype(self, query=query, key=key, value=value)
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(
                f"query, key and value must share the batch size; got shapes {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"key and value must have the same number of positions; got shapes {tuple(key.shape)} "
                f"and {tuple(value.shape)}"
            )
        return query.shape[0], query.shape[1], key.shape[1]

    def _check_projected(self, query, k, v):
        """``(batch, queries, keys)`` of a query ``(batch, queries, embed_dim)`` and projected ``k``, ``v``."""
        if not torch.is_tensor(query) or query.dim() != 3 or query.shape[-1] != self.embed_dim:
            got = tuple(query.shape) if torch.is_tensor(query) else type(query).__name__
            raise ValueError(f"query must have shape (batch, queries, embed_dim={self.embed_dim}); got {got}")
        expected = (query.shape[0], self.num_heads, None, self.head_dim)
        for name, tensor in (("k", k), ("v", v)):
            if not torch.is_tensor(tensor) or tensor.dim() != 4 or any(
                    want is not None and got != want for got, want in zip(tensor.shape, expected, strict=True)):
                got = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
                raise ValueError(
                    f"{name} must have shape (batch={query.shape[0]}, heads={self.num_heads}, keys, "
                    f"head_dim={self.head_dim}) (from project_keys_values); got {got}")
        if k.shape[2] != v.shape[2]:
            raise ValueError(f"k and v must have the same number of keys; got shapes {tuple(k.shape)} "
                             f"and {tuple(v.shape)}")
        return query.shape[0], query.shape[1], k.shape[2]

    def _build_masks(self, batch, num_queries, num_keys, device, dtype, key_padding_mask, attn_mask, is_causal):
        """Merge every mask into ``keep`` (bool, True = attend) and ``bias`` (float, added).

        Both are ``(batch or 1, heads or 1, queries or 1, keys)``, or ``None``.
        """
        keep, bias = None, None

        def add(mask):
            nonlocal keep, bias
            if mask.dtype == torch.bool:
                keep = ~mask if keep is None else keep & ~mask
            else:
                mask = mask.to(dtype)
                bias = mask if bias is None else bias + mask

        if key_padding_mask is not None:
            self._check_mask("key_padding_mask", key_padding_mask, [(batch, num_keys)],
                             "(batch, keys)")
            add(key_padding_mask.to(device)[:, None, None, :])
        if attn_mask is not None:
            heads = self.num_heads
            shapes = [(num_queries, num_keys), (batch * heads, num_queries, num_keys),
                      (batch, heads, num_queries, num_keys)]
            self._check_mask("attn_mask", attn_mask, shapes,
                             "(queries, keys), (batch * num_heads, queries, keys) or (batch, num_heads, queries, keys)")
            add(attn_mask.to(device).reshape(-1, heads, num_queries, num_keys) if attn_mask.dim() == 3
                else attn_mask.to(device))
        if is_causal:
            add(causal_mask(num_queries, num_keys, device=device))
        return keep, bias

    @staticmethod
    def _check_mask(name, mask, shapes, expected):
        if not torch.is_tensor(mask):
            raise TypeError(f"{name} must be a torch.Tensor or None; got {type(mask).__name__}")
        if not (mask.dtype == torch.bool or mask.is_floating_point()):
            raise TypeError(f"{name} must be bool (True = ignore) or floating point (added); got dtype {mask.dtype}")
        if tuple(mask.shape) not in shapes:
            allowed = " or ".join(str(shape) for shape in shapes)
            raise ValueError(
                f"{name} of shape {tuple(mask.shape)} does not fit: expected {expected} = {allowed}"
            )

    # -- interoperability with torch ----------------------------------------------------
    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` (same sizes) into this module; return self."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be an nn.MultiheadAttention; got {type(mha).__name__}")
        if (mha.embed_dim, mha.num_heads) != (self.embed_dim, self.num_heads):
            raise ValueError(
                f"mha has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; this module has "
                f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
            )
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("mha uses kdim/vdim, add_bias_kv or add_zero_attn, which this module does not have")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("mha and this module must agree on bias=True/False")
        # torch stacks the three input projections in one (3 * embed_dim, embed_dim) matrix
        for index, projection in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            rows = slice(index * self.embed_dim, (index + 1) * self.embed_dim)
            projection.weight.copy_(mha.in_proj_weight[rows])
            if projection.bias is not None:
                projection.bias.copy_(mha.in_proj_bias[rows])
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """A new module with the sizes, dropout and weights of ``mha``."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be an nn.MultiheadAttention; got {type(mha).__name__}")
        module = cls(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=mha.in_proj_bias is not None)
        module = module.to(device=mha.in_proj_weight.device, dtype=mha.in_proj_weight.dtype)
        return module.load_from_torch(mha)
