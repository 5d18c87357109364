"""Argument checks for the library's public entry points, in one message style.

Each check names the argument, says what it got and what was expected, e.g.
``beam_size must be an int >= 1; got 0``. The right kind of value out of range raises
``ValueError``; a wrong kind (a str for an int) raises ``WrongType``, which is both a
``TypeError`` and a ``ValueError``, so ``except ValueError`` catches every bad value. The checks
run where a learner calls in (constructors, ``decode``, ``train``), never inside a
per-step loop. Tested in tests/test_validate.py.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch


class WrongType(TypeError, ValueError):
    """A value of the wrong kind: a ``TypeError``, and a ``ValueError`` like every bad argument."""


def is_int(value) -> bool:
    """True for a Python int that is not a bool (``True`` is an int subclass, never a size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for a Python int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_int(name: str, value, *, at_least: int | None = None, at_most: int | None = None,
                none_ok: bool = False) -> None:
    """Raise unless ``value`` is an int in ``[at_least, at_most]`` (or ``None`` when ``none_ok``)."""
    if none_ok and value is None:
        return
    bounds = _bounds(at_least, at_most)
    expected = f"an int{bounds}{' or None' if none_ok else ''}"
    if not is_int(value):
        raise WrongType(f"{name} must be {expected}; got {type(value).__name__} {value!r}")
    if (at_least is not None and value < at_least) or (at_most is not None and value > at_most):
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def require_number(name: str, value, *, at_least: float | None = None, above: float | None = None,
                   at_most: float | None = None, below: float | None = None) -> None:
    """Raise unless ``value`` is a finite int/float within the given bounds (all optional)."""
    bounds = _interval(at_least, above, at_most, below)
    # a number between two bounds is finite; one bound alone lets inf through unless we say so
    expected = ("a number" if bounds.startswith(" in") else "a finite number") + bounds
    if not is_number(value):
        raise WrongType(f"{name} must be {expected}; got {type(value).__name__} {value!r}")
    outside = ((at_least is not None and value < at_least) or (above is not None and value <= above)
               or (at_most is not None and value > at_most) or (below is not None and value >= below))
    if not math.isfinite(value) or outside:
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def require_one_of(name: str, value, choices: Collection) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")


def require_lengths(name: str, lengths, *, shape: tuple[int, ...], low: int, high: int, high_is: str,
                    shape_is: str = "(batch,)", context: str = "") -> None:
    """Raise unless ``lengths`` is an integer tensor of ``shape`` with values in ``[low, high]``.

    The one check of valid lengths (a classifier's, an encoder's, a masked softmax's).
    ``shape_is`` and ``high_is`` name what the shape and the upper bound are (e.g.
    ``"src_steps"``), ``context`` says what they were read from (e.g. ``" for src of shape (2, 5)"``).
    Reading the minimum and maximum synchronises with the device (once: both are read together):
    call this once per batch at an entry point, not per step.
    """
    if not torch.is_tensor(lengths):
        raise WrongType(f"{name} must be a torch.Tensor of shape {shape_is}; got {type(lengths).__name__}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise WrongType(f"{name} must hold integers; got dtype {lengths.dtype}")
    if tuple(lengths.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {shape_is} = {tuple(shape)}{context}; "
                         f"got shape {tuple(lengths.shape)}")
    if lengths.numel():
        smallest, largest = torch.stack(torch.aminmax(lengths)).tolist()  # one device sync, not two
        if smallest < low or largest > high:
            raise ValueError(f"{name} must be in [{low}, {high_is} = {high}]; got values from "
                             f"{smallest} to {largest}")


def _bounds(at_least, at_most) -> str:
    if at_least is not None and at_most is not None:
        return f" in [{at_least}, {at_most}]"
    if at_least is not None:
        return f" >= {at_least}"
    return f" <= {at_most}" if at_most is not None else ""


def _interval(at_least, above, at_most, below) -> str:
    """`` in [0, 1)``, `` > 0``, ... : the bounds as a learner writes them."""
    low = f"[{at_least}" if at_least is not None else f"({above}" if above is not None else None
    high = f"{at_most}]" if at_most is not None else f"{below})" if below is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" >= {at_least}" if at_least is not None else f" > {above}"
    if high:
        return f" <= {at_most}" if at_most is not None else f" < {below}"
    return ""
