"""Chapter 05 (multi-head and gated self-attention): exercise checks. Hidden cases are marked ``hidden``."""

from __future__ import annotations

import torch

from utils.attention.gated import gated_mix
from utils.attention.multihead import MultiHeadAttention, causal_mask, merge_heads, split_heads
from utils.course.checks.compare import compare_values, expect, seeded_randn
from utils.course.checks.core import Case, Exercise, register


def _arange(*shape: int) -> torch.Tensor:
    """Entries 0, 1, 2, ...: a wrong split shows up as the wrong numbers in the wrong places."""
    return torch.arange(float(torch.Size(shape).numel())).reshape(shape)


def _compare_gate(got, expected):
    if not isinstance(got, tuple) or len(got) != 2:
        return "return a tuple (y, gate)"
    return compare_values(got, expected, what="your (y, gate)")


# ---------------------------------------------------------------- 5.5 sinusoidal positions


def reference_positional_encoding(seq_len: int, d_model: int, device=None) -> torch.Tensor:
    """Vaswani et al. (2017): ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``."""
    position = torch.arange(seq_len, dtype=torch.float64, device=device)[:, None]  # (seq_len, 1)
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64, device=device) / d_model)
    angle = position * frequency  # (seq_len, d_model / 2)
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(1).float()  # sin, cos interleaved


def equivariance_error(pe: torch.Tensor, seed: int) -> float:
    """How far ``f(x + pe)`` with ``f`` = seeded multi-head self-attention is from permuting
    with its input: ``max |f(P x + pe) - P f(x + pe)|`` for a fixed random permutation ``P``."""
    seq_len, d_model = pe.shape
    torch.manual_seed(seed)
    layer = MultiHeadAttention(d_model, num_heads=2 if d_model % 2 == 0 else 1).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, seq_len, d_model, generator=generator)
    perm = torch.randperm(seq_len, generator=generator)
    while seq_len > 1 and torch.equal(perm, torch.arange(seq_len)):
        perm = torch.randperm(seq_len, generator=generator)
    with torch.no_grad():
        shuffled = layer(x[:, perm] + pe, x[:, perm] + pe, x[:, perm] + pe)[0]
        plain = layer(x + pe, x + pe, x + pe)[0][:, perm]
    return (shuffled - plain).abs().max().item()


def call_positional_encoding(answer, args):
    """``(pe, breaks equivariance)``: the encoding, and whether adding it to the input makes the
    layer's output stop permuting with its input (``None`` when the answer is not a tensor of
    the right shape, or for one position, which has no other order)."""
    seq_len, d_model = args
    pe = answer(seq_len, d_model)
    if not torch.is_tensor(pe) or tuple(pe.shape) != (seq_len, d_model) or seq_len < 2:
        return pe, None
    pe = pe.detach().float().cpu()
    return pe, bool(equivariance_error(pe, seed=seq_len * 100 + d_model) > 1e-3)


def _compare_positions(got, expected):
    pe, breaks = got
    if breaks is False and expected[1]:
        return ("adding your encoding to x leaves the layer permutation equivariant (shuffling the "
                "input tokens still just shuffles the outputs): the positions must get different vectors")
    return compare_values(pe, expected[0], atol=1e-5, rtol=1e-4, what="your encoding")


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
            Case("x of shape (2, 5, 6), num_heads=3", lambda: (seeded_randn(2, 5, 6, seed=1), 3)),
            Case("x = arange of shape (2, 4, 8), num_heads=4", lambda: (_arange(2, 4, 8), 4), hidden=True),
            Case("x of shape (3, 2, 6), num_heads=1 (one head)", lambda: (seeded_randn(3, 2, 6, seed=2), 1),
                 hidden=True),
            Case("x of shape (1, 6, 6), num_heads=6 (head_dim 1)", lambda: (seeded_randn(1, 6, 6, seed=3), 6),
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
            Case("x of shape (2, 3, 4, 5)", lambda: (seeded_randn(2, 3, 4, 5, seed=4),)),
            Case("x = split_heads(arange (2, 4, 6), 3): the round trip", lambda: (split_heads(_arange(2, 4, 6), 3),),
                 hidden=True),
            Case("x of shape (3, 1, 2, 4) (one head)", lambda: (seeded_randn(3, 1, 2, 4, seed=5),), hidden=True),
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
        points=2,
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
                 lambda: (seeded_randn(1, 2, 3, seed=6), seeded_randn(1, 2, 3, seed=7), seeded_randn(1, 2, 3, seed=8))),
            Case("gate_logits all 0 (g = 0.5: the average), shape (2, 3, 4)",
                 lambda: (seeded_randn(2, 3, 4, seed=9), seeded_randn(2, 3, 4, seed=10), torch.zeros(2, 3, 4))),
            Case("gate_logits of -50 and +50 (closed and open gates)",
                 lambda: (seeded_randn(1, 2, 2, seed=11), seeded_randn(1, 2, 2, seed=12),
                          torch.tensor([[[-50.0, 50.0], [50.0, -50.0]]])), hidden=True),
            Case("shape (3, 4, 5) with large logits",
                 lambda: (seeded_randn(3, 4, 5, seed=13), seeded_randn(3, 4, 5, seed=14), 10 * seeded_randn(3, 4, 5, seed=15)),
                 hidden=True),
        ),
    ),
    Exercise(
        id="5.5",
        title="sinusoidal positional encoding",
        points=4,
        target="positional_encoding",
        reference=reference_positional_encoding,
        call=call_positional_encoding,
        compare=_compare_positions,
        hints=(
            "row p is position p's vector. Columns come in pairs 2i, 2i + 1 that share one angle, "
            "p divided by 10000 to the power 2i / d_model: the sine of it in the even column, the "
            "cosine in the odd one, interleaved, not one half of sines followed by one of cosines."
            " The frequencies fall from 1 (columns 0, 1) to nearly 1/10000.",
            "build a (seq_len, 1) column of positions and a (1, d_model / 2) row of frequencies "
            "(one per pair, from the even column indices); their product broadcasts to the "
            "(seq_len, d_model / 2) angles. Take sine and cosine of the angles and interleave them "
            "along the features: stack them on a new last axis, then flatten the last two axes. "
            "Return float32.",
            "section 4 of this chapter shows why a layer without positions cannot tell orders apart;"
            " its equivariance_error measures it. The formula is section 3.5 of Vaswani et "
            "al. (2017), Attention Is All You Need.",
        ),
        cases=(
            Case("seq_len=4, d_model=6", lambda: (4, 6)),
            Case("seq_len=3, d_model=2 (one pair: sin p, cos p)", lambda: (3, 2)),
            Case("seq_len=50, d_model=16 (slow frequencies)", lambda: (50, 16), hidden=True),
            Case("seq_len=1, d_model=8 (position 0 only)", lambda: (1, 8), hidden=True),
            Case("seq_len=10, d_model=64", lambda: (10, 64), hidden=True),
        ),
    ),
)
