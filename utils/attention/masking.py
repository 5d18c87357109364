"""Masks over the key axis, and the masked softmax every attention layer uses.

Shapes: ``scores`` is ``(..., queries, keys)``; ``valid_lens`` is ``(batch,)`` (one
length per sequence, shared by all its queries) or ``(batch, queries)`` (one
length per query), where ``batch`` is the product of the leading axes of
``scores`` except the last two, or the first axis when there are more (heads).
"""

from __future__ import annotations

import torch

from utils.validate import WrongType, require_int, require_lengths


def length_mask(valid_lens: torch.Tensor, num_keys: int) -> torch.Tensor:
    """``(*valid_lens.shape, num_keys)`` bool: True where ``position < valid_len``.

    Built in chapter 01 §2 as ``positions < valid_lens[:, None]``; tested in
    tests/test_dot_product_attention.py.
    """
    if not torch.is_tensor(valid_lens) or valid_lens.is_floating_point() or valid_lens.is_complex() \
            or valid_lens.dtype == torch.bool:
        raise WrongType(f"valid_lens must be a tensor of integers; got "
                        f"{valid_lens.dtype if torch.is_tensor(valid_lens) else type(valid_lens).__name__}")
    require_int("num_keys", num_keys, at_least=0)
    positions = torch.arange(num_keys, device=valid_lens.device)
    return positions < valid_lens.unsqueeze(-1)


def expand_valid_lens(scores: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    """Validate ``valid_lens`` against ``scores`` and broadcast it to ``scores.shape[:-1]``.

    Every attention path (the masked softmax, the fused SDPA paths) validates lengths here, so
    they all accept the same shapes and raise the same errors.
    """
    if scores.dim() < 2:
        raise ValueError(
            f"scores must have shape (batch, queries, keys) or (batch, keys); got shape {tuple(scores.shape)}"
        )
    batch, queries, num_keys = scores.shape[0], scores.shape[-2], scores.shape[-1]
    # one length per sequence, or (with a queries axis) one per query
    per_query = torch.is_tensor(valid_lens) and valid_lens.dim() == 2 and scores.dim() >= 3
    require_lengths("valid_lens", valid_lens, shape=(batch, queries) if per_query else (batch,),
                    shape_is="(batch, queries)" if per_query else "(batch,)", low=0, high=num_keys,
                    high_is="keys", context=f" for scores of shape {tuple(scores.shape)}")
    valid_lens = valid_lens.to(scores.device)
    # (batch,) -> (batch, 1, ..., 1) or (batch, queries) -> (batch, 1, ..., queries),
    # then broadcast over any middle axes such as heads
    if valid_lens.dim() == 1:
        valid_lens = valid_lens.reshape(batch, *([1] * (scores.dim() - 2)))
    else:
        valid_lens = valid_lens.reshape(batch, *([1] * (scores.dim() - 3)), queries)
    return valid_lens.expand(scores.shape[:-1])


def require_keep_mask(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Validate a boolean keep-mask (True: the query may attend to the key) against ``scores``."""
    if not torch.is_tensor(keep) or keep.dtype != torch.bool:
        got = keep.dtype if torch.is_tensor(keep) else type(keep).__name__
        raise TypeError(f"keep must be a bool torch.Tensor (True = may attend) or None; got {got}")
    try:
        torch.broadcast_shapes(keep.shape, scores.shape)
    except RuntimeError:
        raise ValueError(f"keep of shape {tuple(keep.shape)} does not broadcast to the scores' shape "
                         f"{tuple(scores.shape)} (..., queries, keys)") from None
    return keep.to(scores.device)


def zero_unseen_keys(tensor: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``tensor (..., keys, features)`` with zeros at the keys that no query may see.

    A weight of exactly 0 does not protect the output from what it multiplies: ``0 * NaN`` and
    ``0 * inf`` are NaN. Padded keys and values may hold anything (uninitialised memory, a
    sentinel), so the layers clear them before they reach a matrix product. ``keep`` is
    ``(..., queries, keys)`` bool (True = may attend) or ``None`` (nothing to clear).
    """
    if keep is None:
        return tensor
    seen = keep.any(dim=-2)  # (..., keys): some query may look at this key
    return tensor.masked_fill(~seen.unsqueeze(-1), 0.0)


def keep_from_lengths(shape: tuple[int, ...], valid_lens: torch.Tensor | None, device) -> torch.Tensor | None:
    """The bool keep-mask ``shape = (batch, ..., queries, keys)`` of ``valid_lens`` (``None``: none)."""
    if valid_lens is None:
        return None
    lengths = expand_valid_lens(torch.empty((), device=device).expand(shape), valid_lens)
    return length_mask(lengths, shape[-1])


def without_empty_rows(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keep | empty, empty)``: rows with no key to see may see every key; zero them afterwards.

    The fully-masked-row trick in the form a fused kernel takes: a row of all ``-inf`` would be
    softmax(-inf, …, -inf) = NaN (in the output and in the gradient), so such rows attend
    anywhere inside the kernel and the caller zeroes their outputs with ``empty``
    ``(..., queries, 1)``. ``masked_softmax`` does the same for explicit weights.
    """
    empty = ~keep.any(dim=-1, keepdim=True)
    return keep | empty, empty


def masked_softmax(scores: torch.Tensor, valid_lens: torch.Tensor | None = None, *,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis that gives zero weight to the keys a query may not see.

    The one masking primitive of the course: every attention layer's weights come from here.

    Args:
        scores: ``(batch, queries, keys)`` (or any ``(batch, ..., queries, keys)``, e.g. heads).
        valid_lens: ``None`` (no length mask), ``(batch,)``, or ``(batch, queries)``; integers in
            ``[0, keys]``: keys at or beyond the length are masked. A length of 0 masks the row.
        keep: ``None`` or a bool mask broadcastable to ``scores`` (True = may attend), e.g. a
            causal mask or a key-padding mask; combined with ``valid_lens`` when both are given.

    Returns:
        Weights with the shape and dtype of ``scores``; each row sums to 1 over the keys it may
        see, and a fully masked row is all zeros (never NaN). ``scores`` is not modified.

    Built in chapter 01 §2 as ``masked_fill``, then used from §3 on; tested in
    tests/test_masked_softmax.py.
    """
    if not torch.is_tensor(scores):
        raise TypeError(f"scores must be a torch.Tensor; got {type(scores).__name__}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be floating point; got dtype {scores.dtype}")
    if keep is not None:
        keep = require_keep_mask(scores, keep)
    if valid_lens is not None:
        by_length = length_mask(expand_valid_lens(scores, valid_lens), scores.shape[-1])
        keep = by_length if keep is None else keep & by_length
    if keep is None:
        return torch.softmax(scores, dim=-1)
    # -inf (not a large negative number) so masked keys get exactly zero weight in
    # every dtype; masked_fill returns a new tensor, the caller's scores stay intact
    filled = scores.masked_fill(~keep, float("-inf"))
    # a fully masked row would be softmax(-inf, ..., -inf) = NaN, in the forward pass
    # and in the gradient: give it finite scores, then zero its weights below
    fully_masked = ~keep.any(dim=-1, keepdim=True)
    filled = filled.masked_fill(fully_masked, 0.0)
    return torch.softmax(filled, dim=-1).masked_fill(~keep, 0.0)
