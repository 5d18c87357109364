"""The one validation module: each check names the argument, the value and what was expected."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from utils.validate import (
    is_int,
    is_number,
    require_int,
    require_lengths,
    require_number,
    require_one_of,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value", [0, -1, 7, 2**40])
def test_is_int_accepts_ints(value):
    assert is_int(value) and is_number(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, torch.tensor(1)])
def test_is_int_rejects_the_rest(value):
    assert not is_int(value)


@pytest.mark.parametrize(("value", "error", "message"), [
    (0, ValueError, "beam_size must be an int >= 1; got 0"),
    (True, TypeError, "beam_size must be an int >= 1; got bool True"),
    (1.5, TypeError, "beam_size must be an int >= 1; got float 1.5"),
    ("3", TypeError, "beam_size must be an int >= 1; got str '3'"),
])
def test_require_int_messages(value, error, message):
    with pytest.raises(error) as caught:
        require_int("beam_size", value, at_least=1)
    assert str(caught.value) == message


def test_require_int_bounds_and_none():
    require_int("k", 3, at_least=3, at_most=3)
    require_int("k", None, at_least=1, none_ok=True)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 2\]; got 3"):
        require_int("k", 3, at_least=1, at_most=2)
    with pytest.raises(TypeError, match="k must be an int >= 1; got NoneType None"):
        require_int("k", None, at_least=1)


@pytest.mark.parametrize(("kwargs", "bad", "message"), [
    ({"above": 0}, 0, "lr must be a finite number > 0; got 0"),
    ({"above": 0}, float("inf"), "lr must be a finite number > 0; got inf"),
    ({"at_least": 0}, float("nan"), "lr must be a finite number >= 0; got nan"),
    ({"at_least": 0, "below": 1}, 1, r"lr must be a number in \[0, 1\); got 1"),
    ({"above": 0, "at_most": 1}, 0.0, r"lr must be a number in \(0, 1\]; got 0.0"),
    ({"at_most": 1}, 2, "lr must be a finite number <= 1; got 2"),
])
def test_require_number_messages(kwargs, bad, message):
    with pytest.raises(ValueError, match=message):
        require_number("lr", bad, **kwargs)


def test_require_number_accepts_the_bounds_it_states():
    require_number("p", 0, at_least=0, below=1)
    require_number("p", 1, above=0, at_most=1)
    with pytest.raises(TypeError, match="p must be a number in"):
        require_number("p", True, at_least=0, below=1)


def test_require_one_of():
    require_one_of("amp", "bf16", ("bf16", "off"))
    with pytest.raises(ValueError, match="amp must be one of 'bf16', 'off'; got 'fp8'"):
        require_one_of("amp", "fp8", ("bf16", "off"))


def test_require_lengths():
    require_lengths("lens", torch.tensor([1, 3]), shape=(2,), low=1, high=3, high_is="steps")
    with pytest.raises(ValueError, match=r"lens must be in \[1, steps = 3\]; got values from 0 to 3"):
        require_lengths("lens", torch.tensor([0, 3]), shape=(2,), low=1, high=3, high_is="steps")
    with pytest.raises(TypeError, match="lens must hold integers; got dtype torch.float32"):
        require_lengths("lens", torch.tensor([1.0, 3.0]), shape=(2,), low=1, high=3, high_is="steps")
    with pytest.raises(ValueError, match=r"lens must have shape \(batch,\) = \(3,\); got shape \(2,\)"):
        require_lengths("lens", torch.tensor([1, 3]), shape=(3,), low=1, high=3, high_is="steps")
    with pytest.raises(TypeError, match="lens must be a torch.Tensor"):
        require_lengths("lens", [1, 3], shape=(2,), low=1, high=3, high_is="steps")


def _bool_int_idiom(path: Path) -> list[int]:
    """Lines of ``path`` that spell out ``isinstance(x, bool) ... isinstance(x, int)`` by hand."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.BoolOp):
            names = set()
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "isinstance":
                    kinds = call.args[1].elts if isinstance(call.args[1], ast.Tuple) else [call.args[1]]
                    names |= {kind.id for kind in kinds if isinstance(kind, ast.Name)}
            if {"bool", "int"} <= names:
                lines.append(node.lineno)
    return lines


def test_the_library_uses_one_validation_idiom():
    """``is_int`` / ``require_int`` instead of the bool-is-an-int test written out again."""
    found = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / "utils").rglob("*.py"))
             if path.name != "validate.py" and (lines := _bool_int_idiom(path))}
    assert found == {}
