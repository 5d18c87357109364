"""Chapter 05 (multi-head and gated self-attention): exercise checks. Hidden cases are marked ``hidden``."""

from __future__ import annotations

import torch

from utils.attention.gated import gated_mix
from utils.attention.multihead import causal_mask, merge_heads, split_heads
from utils.checks.compare import compare_values, expect
from utils.checks.core import Case, Exercise, register


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _arange(*shape: int) -> torch.Tensor:
    """Entries 0, 1, 2, ...: a wrong split shows up as the wrong numbers in the wrong places."""
    return torch.arange(float(torch.Size(shape).numel())).reshape(shape)


def _compare_gate(got, expected):
    if not isinstance(got, tuple) or len(got) != 2:
        return "return a tuple (y, gate)"
    return compare_values(got, expected, what="your (y, gate)")


register(
    Exercise(
        id="5.1",
        title="split the features into heads",
        points=2,
        target="my_split_heads",
        reference=split_heads,
        compare=expect("your heads"),
        hint="view the last axis as (num_heads, head_dim), giving (batch, seq, heads, head_dim), "
        "then transpose(1, 2); a single view to (batch, heads, seq, head_dim) mixes positions.",
        cases=(
            Case("x = arange of shape (1, 3, 4), num_heads=2", lambda: (_arange(1, 3, 4), 2)),
            Case("x of shape (2, 5, 6), num_heads=3", lambda: (_randn(2, 5, 6, seed=1), 3)),
            Case("x = arange of shape (2, 4, 8), num_heads=4", lambda: (_arange(2, 4, 8), 4), hidden=True),
            Case("x of shape (3, 2, 6), num_heads=1 (one head)", lambda: (_randn(3, 2, 6, seed=2), 1),
                 hidden=True),
            Case("x of shape (1, 6, 6), num_heads=6 (head_dim 1)", lambda: (_randn(1, 6, 6, seed=3), 6),
                 hidden=True),
        ),
    ),
    Exercise(
        id="5.2",
        title="merge the heads back",
        points=2,
        target="my_merge_heads",
        reference=merge_heads,
        compare=expect("your merged features"),
        hint="transpose(1, 2) back to (batch, seq, heads, head_dim), then reshape (not view: the "
        "transposed tensor is not contiguous) to (batch, seq, heads * head_dim).",
        cases=(
            Case("x = arange of shape (1, 2, 3, 2) (batch, heads, seq, head_dim)", lambda: (_arange(1, 2, 3, 2),)),
            Case("x of shape (2, 3, 4, 5)", lambda: (_randn(2, 3, 4, 5, seed=4),)),
            Case("x = split_heads(arange (2, 4, 6), 3): the round trip", lambda: (split_heads(_arange(2, 4, 6), 3),),
                 hidden=True),
            Case("x of shape (3, 1, 2, 4) (one head)", lambda: (_randn(3, 1, 2, 4, seed=5),), hidden=True),
        ),
    ),
    Exercise(
        id="5.3",
        title="a causal mask",
        points=2,
        target="my_causal_mask",
        reference=causal_mask,
        hint="torch.ones(num_queries, num_keys, dtype=torch.bool).triu(diagonal=1): True above the diagonal.",
        cases=(
            Case("num_queries=3, num_keys=3", lambda: (3, 3)),
            Case("num_queries=4, num_keys=4", lambda: (4, 4)),
            Case("num_queries=1, num_keys=1", lambda: (1, 1), hidden=True),
            Case("num_queries=2, num_keys=5 (more keys than queries)", lambda: (2, 5), hidden=True),
            Case("num_queries=4, num_keys=2 (more queries than keys)", lambda: (4, 2), hidden=True),
        ),
    ),
    Exercise(
        id="5.4",
        title="the gate",
        points=3,
        target="my_gated_mix",
        reference=gated_mix,
        compare=_compare_gate,
        hint="g = torch.sigmoid(gate_logits); y = g * attended + (1 - g) * x; return (y, g).",
        cases=(
            Case("x, attended, gate_logits of shape (1, 2, 3)",
                 lambda: (_randn(1, 2, 3, seed=6), _randn(1, 2, 3, seed=7), _randn(1, 2, 3, seed=8))),
            Case("gate_logits all 0 (g = 0.5: the average), shape (2, 3, 4)",
                 lambda: (_randn(2, 3, 4, seed=9), _randn(2, 3, 4, seed=10), torch.zeros(2, 3, 4))),
            Case("gate_logits of -50 and +50 (closed and open gates)",
                 lambda: (_randn(1, 2, 2, seed=11), _randn(1, 2, 2, seed=12),
                          torch.tensor([[[-50.0, 50.0], [50.0, -50.0]]])), hidden=True),
            Case("shape (3, 4, 5) with large logits",
                 lambda: (_randn(3, 4, 5, seed=13), _randn(3, 4, 5, seed=14), 10 * _randn(3, 4, 5, seed=15)),
                 hidden=True),
        ),
    ),
)
