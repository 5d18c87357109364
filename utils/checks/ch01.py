"""Chapter 01 (masked softmax): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch

from utils.attention.masking import length_mask, masked_softmax
from utils.checks.compare import expect
from utils.checks.core import Case, Exercise, register


def _scores(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * scale


def reference_stable_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.double(), dim=-1).to(x.dtype)


def reference_sequence_mask(x: torch.Tensor, valid_len: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    keep = length_mask(valid_len, x.shape[1])  # (batch, steps)
    keep = keep.reshape(*keep.shape, *([1] * (x.dim() - 2)))
    return x.masked_fill(~keep, value)


register(
    Exercise(
        id="1.1",
        title="a boolean length mask",
        points=2,
        target="length_mask",
        reference=length_mask,
        hint="compare torch.arange(num_keys) with valid_lens.unsqueeze(-1): broadcasting does the rest.",
        cases=(
            Case("valid_lens=tensor([1, 3]), num_keys=4", lambda: (torch.tensor([1, 3]), 4)),
            Case("valid_lens=tensor([0, 4, 2]), num_keys=4", lambda: (torch.tensor([0, 4, 2]), 4)),
            Case("valid_lens=tensor([5, 1]), num_keys=5 (a length equal to num_keys)",
                 lambda: (torch.tensor([5, 1]), 5), hidden=True),
            Case("2-D valid_lens of shape (2, 3), num_keys=4",
                 lambda: (torch.tensor([[1, 2, 3], [4, 0, 2]]), 4), hidden=True),
        ),
    ),
    Exercise(
        id="1.2",
        title="masked softmax with 1-D and 2-D valid lengths",
        points=3,
        target="my_masked_softmax",
        reference=masked_softmax,
        compare=expect("your weights",
                       nan_message="your weights contain NaN (a fully masked row must be all zeros)"),
        hint="build a (batch, queries, keys) mask, fill masked scores with -inf in a NEW tensor, "
        "softmax, then zero the rows that had no valid key at all.",
        cases=(
            Case("scores (2, 2, 4), valid_lens=tensor([2, 3])",
                 lambda: (_scores(2, 2, 4, seed=1), torch.tensor([2, 3]))),
            Case("scores (2, 3, 4), 2-D valid_lens=tensor([[1, 2, 3], [2, 4, 1]])",
                 lambda: (_scores(2, 3, 4, seed=2), torch.tensor([[1, 2, 3], [2, 4, 1]]))),
            Case("scores (2, 2, 3), valid_lens=tensor([0, 3]) (a fully masked sequence)",
                 lambda: (_scores(2, 2, 3, seed=3), torch.tensor([0, 3])), hidden=True),
            Case("scores (3, 2, 5) of size 50, 2-D valid_lens with zeros",
                 lambda: (_scores(3, 2, 5, seed=4, scale=50.0), torch.tensor([[0, 5], [1, 0], [3, 2]])),
                 hidden=True),
            Case("scores (2, 1, 6), valid_lens=tensor([6, 6]) (nothing masked)",
                 lambda: (_scores(2, 1, 6, seed=5), torch.tensor([6, 6])), hidden=True),
        ),
    ),
    Exercise(
        id="1.3",
        title="a numerically stable softmax",
        points=2,
        target="stable_softmax",
        reference=reference_stable_softmax,
        compare=expect("your softmax"),
        hint="softmax(x) = softmax(x - c) for any constant c: subtract the row maximum before exp().",
        cases=(
            Case("x=tensor([[1., 2., 3.]])", lambda: (torch.tensor([[1.0, 2.0, 3.0]]),)),
            Case("x=tensor([[1000., 1001., 1002.]]) (exp overflows in float32)",
                 lambda: (torch.tensor([[1000.0, 1001.0, 1002.0]]),)),
            Case("x=tensor([[-1000., -1001., -1002.]]) (exp underflows)",
                 lambda: (torch.tensor([[-1000.0, -1001.0, -1002.0]]),), hidden=True),
            Case("random x of shape (2, 3, 5) scaled by 300",
                 lambda: (_scores(2, 3, 5, seed=6, scale=300.0),), hidden=True),
        ),
    ),
    Exercise(
        id="1.4",
        title="a sequence mask that leaves its input alone",
        points=2,
        target="sequence_mask",
        reference=reference_sequence_mask,
        hint="masked_fill (without the underscore) returns a new tensor; X[mask] = value writes into X.",
        cases=(
            Case("X of shape (2, 3), valid_len=tensor([1, 2])",
                 lambda: (_scores(2, 3, seed=7), torch.tensor([1, 2]))),
            Case("X of shape (2, 4), valid_len=tensor([0, 4]), value=-1e6",
                 lambda: (_scores(2, 4, seed=8), torch.tensor([0, 4]), -1e6)),
            Case("X of shape (2, 3, 2) (features after the steps), valid_len=tensor([2, 1])",
                 lambda: (_scores(2, 3, 2, seed=9), torch.tensor([2, 1])), hidden=True),
        ),
    ),
)
