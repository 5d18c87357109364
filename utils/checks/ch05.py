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
        hints=(
            "head i holds features i · head_dim to (i + 1) · head_dim − 1 of every position: the "
            "positions stay whole and in order, only the features are divided. Reshaping straight"
            " to the final shape puts different positions into one head.",
            "first view the last axis as (num_heads, head_dim), which gives (batch, seq, heads, "
            "head_dim), then swap the sequence and head axes.",
            "section 2 of this chapter (the split), and section 4, the bug from the wild.",
        ),
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
        hints=(
            "undo the split: bring the sequence axis back in front of the heads, then flatten the"
            " heads and their features into one axis. The round-trip case checks that merging a "
            "split gives back the original.",
            "after swapping the axes the tensor is (batch, seq, heads, head_dim) but no longer "
            "contiguous in memory, so flatten it with the method that copies when it must, not "
            "with view.",
            "section 2 of this chapter (the merge).",
        ),
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
        hints=(
            "query i may see keys 0 to i, so True marks exactly the pairs where the key's "
            "position is larger than the query's, also when the numbers of queries and keys "
            "differ.",
            "compare a column of query positions, (num_queries, 1), with a row of key positions, "
            "(1, num_keys): broadcasting gives the (num_queries, num_keys) grid. Which comparison"
            " is True above the diagonal?",
            "section 3 of this chapter prints a causal mask and explains torch's True = ignore "
            "convention.",
        ),
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
        hints=(
            "two results are checked: the gate g, between 0 and 1 for every feature, and y, which"
            " takes the share g of the attended features and the rest, 1 − g, of the input. "
            "Return them as a tuple, y first.",
            "squash the logits element-wise with the logistic sigmoid (torch's own stays exact "
            "for logits of ±50), then combine the three (batch, seq, features) tensors "
            "element-wise: no matrix product, no sum over an axis.",
            "section 5 of this chapter gives the equations.",
        ),
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
