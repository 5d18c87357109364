"""Shape checks shared by the attention layers: clear errors before a cryptic ``bmm`` one.

Shapes: ``queries`` ``(batch, ..., queries, query_size)``, ``keys`` ``(batch, ..., keys,
key_size)``, ``values`` ``(batch, ..., keys, value_size)``; the leading axes (batch, and any
extra ones such as heads) must be equal.
"""

from __future__ import annotations

import torch


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def require_layer_dtype(layer: torch.nn.Module, **tensors: torch.Tensor) -> None:
    """Each tensor must be floating point and, outside ``torch.autocast``, of the dtype of ``layer``'s
    parameters (else ``TypeError`` naming it, instead of ``mat1 and mat2 must have the same dtype``)."""
    parameter = next(layer.parameters(), None)
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be floating point; got dtype {tensor.dtype}")
        if parameter is not None and tensor.dtype != parameter.dtype \
                and not torch.is_autocast_enabled(tensor.device.type):
            raise TypeError(f"{name} has dtype {tensor.dtype} but the layer's parameters have {parameter.dtype}: "
                            f"convert one of them (layer.to(...) or {name}.to(...)), or run under torch.autocast")


def require_queries_keys_values(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, *,
                              query_size: int | None = None, key_size: int | None = None) -> None:
    """Raise ``TypeError``/``ValueError`` naming the argument whose shape does not fit.

    With ``query_size`` and ``key_size`` None, queries and keys must share their last axis
    (dot-product scoring); otherwise each must have the given size (additive scoring).
    """
    for name, tensor in (("queries", queries), ("keys", keys), ("values", values)):
        if not torch.is_tensor(tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be floating point; got dtype {tensor.dtype}")
        if tensor.dim() < 3:
            raise ValueError(f"{name} must have shape (batch, ..., steps, features) with at least 3 "
                             f"axes; got shape {_shape(tensor)}")
    if len({queries.device, keys.device, values.device}) > 1:
        raise ValueError(f"queries, keys and values must be on one device; got {queries.device}, "
                         f"{keys.device} and {values.device}")
    # under torch.autocast the matmuls cast for themselves; outside it a mix fails deep in bmm
    if len({queries.dtype, keys.dtype, values.dtype}) > 1 and not torch.is_autocast_enabled(queries.device.type):
        raise TypeError(f"queries, keys and values must share one dtype (or run under torch.autocast); got "
                        f"{queries.dtype}, {keys.dtype} and {values.dtype}")
    if not (queries.dim() == keys.dim() == values.dim()) or not (
            queries.shape[:-2] == keys.shape[:-2] == values.shape[:-2]):
        raise ValueError(
            f"queries, keys and values must share their leading (batch, ...) axes; got queries "
            f"{_shape(queries)}, keys {_shape(keys)}, values {_shape(values)}")
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(
            f"keys and values must have one value per key: keys has shape {_shape(keys)} "
            f"({keys.shape[-2]} keys) but values has shape {_shape(values)} ({values.shape[-2]})")
    if query_size is None and key_size is None:
        if queries.shape[-1] != keys.shape[-1]:
            raise ValueError(
                f"queries and keys must have the same last axis for a dot product; got queries "
                f"{_shape(queries)} and keys {_shape(keys)}")
        return
    if query_size is not None and queries.shape[-1] != query_size:
        raise ValueError(f"queries of shape {_shape(queries)} must have query_size={query_size} "
                         f"features on the last axis")
    if key_size is not None and keys.shape[-1] != key_size:
        raise ValueError(f"keys of shape {_shape(keys)} must have key_size={key_size} "
                         f"features on the last axis")
