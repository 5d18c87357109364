"""Comparing an answer with the expected value, with messages a learner can act on."""

from __future__ import annotations

import math
from typing import Any

import torch

from utils.validate import is_number


def _index(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(index))


def compare_tensors(got: Any, expected: torch.Tensor, *, atol: float = 1e-5, rtol: float = 1e-4,
                    what: str = "your result") -> str | None:
    """``None`` when ``got`` is a tensor of ``expected``'s shape and values, else why not."""
    if not torch.is_tensor(got):
        return f"{what} should be a torch.Tensor; got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(got.shape)}; expected {tuple(expected.shape)}"
    if expected.dtype == torch.bool:
        if got.dtype != torch.bool:
            return f"{what} should be a bool tensor; got dtype {got.dtype}"
        wrong = got != expected
        if wrong.any():
            first = _index(int(wrong.flatten().nonzero()[0]), tuple(got.shape))
            return f"{what} is {bool(got[first])} at index {first}; expected {bool(expected[first])}"
        return None
    if got.is_complex() or not (got.is_floating_point() or got.dtype in (torch.int32, torch.int64)):
        return f"{what} should hold numbers like {expected.dtype}; got dtype {got.dtype}"
    got64, expected64 = got.double(), expected.double()
    if torch.isnan(got64).any() and not torch.isnan(expected64).any():
        first = _index(int(torch.isnan(got64).flatten().nonzero()[0]), tuple(got.shape))
        return f"{what} has NaN at index {first}; expected {expected64[first].item():.4g}"
    close = torch.isclose(got64, expected64, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        gap = (got64 - expected64).abs().nan_to_num(nan=math.inf)
        first = _index(int(gap.flatten().argmax()), tuple(got.shape))
        return (f"{what} is {got64[first].item():.4g} at index {first}; expected "
                f"{expected64[first].item():.4g}")
    return None


def compare_values(got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
                   what: str = "your result") -> str | None:
    """Tensors, numbers, bools, strings and (nested) tuples/lists/dicts of them."""
    if torch.is_tensor(expected):
        return compare_tensors(got, expected, atol=atol, rtol=rtol, what=what)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{what} should be a tuple of {len(expected)} items; got {type(got).__name__}" + (
                f" of {len(got)}" if isinstance(got, (tuple, list)) else "")
        for position, (got_item, expected_item) in enumerate(zip(got, expected, strict=True)):
            problem = compare_values(got_item, expected_item, atol=atol, rtol=rtol,
                                     what=f"item {position} of {what}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{what} should be a dict with keys {sorted(expected)}"
        for key in expected:
            problem = compare_values(got[key], expected[key], atol=atol, rtol=rtol, what=f"{what}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(expected, bool) or isinstance(expected, str):
        return None if got == expected else f"{what} is {got!r}; expected {expected!r}"
    if isinstance(expected, (int, float)):
        if torch.is_tensor(got) and got.numel() == 1:
            got = got.item()
        if not is_number(got):
            return f"{what} should be a number; got {type(got).__name__}"
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{what} is {got:.6g}; expected {expected:.6g}"
        return None
    return None if got == expected else f"{what} is {got!r}; expected {expected!r}"


def _has_nan(value: Any) -> bool:
    if torch.is_tensor(value):
        return value.is_floating_point() and bool(torch.isnan(value).any())
    if isinstance(value, (tuple, list)):
        return any(_has_nan(item) for item in value)
    return False


def expect(what: str = "your result", *, atol: float = 1e-5, rtol: float = 1e-4,
           nan_message: str | None = None):
    """A ``compare`` function: ``compare=expect("your weights", nan_message="…")``.

    ``what`` names the value in messages; ``nan_message``, when given, is the verdict for an
    answer holding NaN anywhere (the usual symptom of a fully masked row or ``0 * log 0``).
    """

    def compare(got: Any, expected: Any) -> str | None:
        if nan_message is not None and _has_nan(got):
            return nan_message
        return compare_values(got, expected, atol=atol, rtol=rtol, what=what)

    return compare


def expect_attention(*, nan_message: str | None = None):
    """A ``compare`` function for attention modules answered as ``(output, attention_weights)``."""
    values = expect("(output, attention_weights)", nan_message=nan_message)

    def compare(got: Any, expected: Any) -> str | None:
        if isinstance(got, tuple) and len(got) == 2 and got[1] is None:
            return "your module has no attention_weights after forward (set self.attention_weights)"
        return values(got, expected)

    return compare


def find_mutation(before: Any, after: Any, where: str = "argument") -> str:
    """Describe the first tensor argument whose values changed ('' when none did)."""
    if torch.is_tensor(before):
        same = before.shape == after.shape and torch.equal(before, after.detach())
        return "" if same else f"{where} was modified in place"
    if isinstance(before, (tuple, list)):
        for position, (old, new) in enumerate(zip(before, after, strict=False)):
            changed = find_mutation(old, new, f"argument {position + 1}" if where == "argument" else where)
            if changed:
                return changed
    return ""


def seeded_randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    """``torch.randn(*shape) * scale`` from its own generator: a case's inputs never depend on the
    global random state (or on the cases run before it)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def set_linear_weight(module, name: str, weight: torch.Tensor, why: str = "") -> None:
    """Give the learner's ``module.<name>`` (an ``nn.Linear`` without bias) the weight ``weight``,
    so that their layer and the reference compute with the same numbers.

    Raises a one-line ``AttributeError``/``ValueError`` (shown as the case's problem) when the
    sub-layer is missing or has another shape; ``why`` is added to the shape message.
    """
    layer = getattr(module, name, None)
    if layer is None or not hasattr(layer, "weight"):
        raise AttributeError(f"your module needs a sub-layer self.{name} (nn.Linear without bias)")
    if tuple(layer.weight.shape) != tuple(weight.shape):
        raise ValueError(f"self.{name}.weight has shape {tuple(layer.weight.shape)}; expected "
                         f"{tuple(weight.shape)}" + (f" ({why})" if why else ""))
    with torch.no_grad():
        layer.weight.copy_(weight)
