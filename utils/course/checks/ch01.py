"""Chapter 01 (masked softmax): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch

from utils.attention.masking import length_mask, masked_softmax
from utils.course.checks.compare import expect
from utils.course.checks.core import Case, Exercise, register


def _scores(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * scale


def reference_stable_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.double(), dim=-1).to(x.dtype)


def reference_sequence_mask(x: torch.Tensor, valid_len: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    keep = length_mask(valid_len, x.shape[1])  # (batch, steps)
    keep = keep.reshape(*keep.shape, *([1] * (x.dim() - 2)))
    return x.masked_fill(~keep, value)


def reference_causal_masked_softmax(scores: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    """``(batch, queries, keys)``: causal weights over a padded sequence; padding queries get zeros.

    The queries are the last ``queries`` positions of the sequence of keys, so query ``i`` sits at
    position ``keys - queries + i``; it sees key ``j`` when ``j <= i`` and when it is itself a real
    token (then every key it sees is real too).
    """
    num_queries, num_keys = scores.shape[-2:]
    position = torch.arange(num_queries, device=scores.device) + (num_keys - num_queries)  # (queries,)
    real = position < valid_lens.to(scores.device)[:, None]  # (batch, queries)
    per_query = torch.where(real, position + 1, torch.zeros_like(position))  # (batch, queries)
    return masked_softmax(scores, per_query)


register(
    Exercise(
        id="1.1",
        title="a boolean length mask",
        points=2,
        target="length_mask",
        reference=length_mask,
        hints=(
            "position j of a row is real exactly when j is smaller than that row's valid length. "
            "The mask compares every position with every length, and must work for 1-D and 2-D "
            "valid_lens alike.",
            "build the positions 0 … num_keys − 1 once, give valid_lens one more axis of size 1 "
            "at the end, and compare the two: broadcasting makes the (*valid_lens.shape, "
            "num_keys) result, with no loop.",
            "section 2 of this chapter (step 1: the mask) makes the same comparison for 1-D "
            "lengths.",
        ),
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
        title="a numerically stable softmax",
        points=2,
        target="stable_softmax",
        reference=reference_stable_softmax,
        compare=expect("your softmax"),
        hints=(
            "exp overflows float32 above about 88.7 and underflows to 0 far below zero, but the "
            "softmax does not change when one constant is subtracted from every score of a row.",
            "subtract each row's largest value (taken over the last axis, keeping that axis so "
            "that it broadcasts), then exponentiate and divide by the row's sum. After the shift "
            "the largest term is exactly 1, so the sum is never 0 or infinite.",
            "section 5 of this chapter derives the trick and tries it on scores in the thousands.",
        ),
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
        id="1.3",
        title="a sequence mask that leaves its input alone",
        points=2,
        target="sequence_mask",
        reference=reference_sequence_mask,
        hints=(
            "the check compares X before and after your call: assigning through indexing, or any "
            "in-place method, changes the caller's tensor. The answer must be a new tensor.",
            "compare the step positions with valid_len to get a (batch, steps) mask, add one axis"
            " of size 1 for every axis of X after the steps so that it broadcasts over the "
            "features, then fill with the out-of-place version of the fill method (no trailing "
            "underscore).",
            "section 6 of this chapter shows the bug from the wild and the one-line fix.",
        ),
        cases=(
            Case("X of shape (2, 3), valid_len=tensor([1, 2])",
                 lambda: (_scores(2, 3, seed=7), torch.tensor([1, 2]))),
            Case("X of shape (2, 4), valid_len=tensor([0, 4]), value=-1e6",
                 lambda: (_scores(2, 4, seed=8), torch.tensor([0, 4]), -1e6)),
            Case("X of shape (2, 3, 2) (features after the steps), valid_len=tensor([2, 1])",
                 lambda: (_scores(2, 3, 2, seed=9), torch.tensor([2, 1])), hidden=True),
        ),
    ),
    Exercise(
        id="1.4",
        title="masked softmax with 1-D and 2-D valid lengths",
        points=3,
        target="my_masked_softmax",
        reference=masked_softmax,
        forbidden=("utils.attention.masking.masked_softmax",),
        compare=expect("your weights",
                       nan_message="your weights contain NaN (a fully masked row must be all zeros)"),
        hints=(
            "three things are tested: a masked key gets exactly 0, a row with no valid key at all"
            " is all zeros (not NaN, not uniform), and the caller's scores are left as they were.",
            "first turn valid_lens, 1-D or 2-D, into a (batch, queries, keys) boolean mask (a 1-D"
            " length holds for every query of its sequence). Fill the masked scores with −∞ in a "
            "new tensor; a row that is −∞ everywhere gives 0/0, so give such rows finite scores "
            "before the softmax and zero their weights after it.",
            "sections 2 to 4 of this chapter: the mask and the fill (2), the two shapes of "
            "valid_lens (3), and what a fully masked row needs (4).",
        ),
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
        id="1.5",
        title="a causal mask over a padded sequence",
        points=4,
        target="causal_masked_softmax",
        reference=reference_causal_masked_softmax,
        compare=expect("your weights",
                       nan_message="your weights contain NaN (a padding query must get all zeros)"),
        hints=(
            "two rules at once: a query never sees a key after its own position, and a query that "
            "is itself padding sees nothing, so its whole row is 0 (it does not borrow the last "
            "real length). With fewer queries than keys, the queries are the LAST positions of "
            "the sequence, not the first.",
            "give every query its position in the sequence (shifted by keys − queries), then turn "
            "the two rules into one length per query, a (batch, queries) tensor: its position plus one for "
            "a real query, 0 for a padding one (a real query only sees earlier keys, and those are "
            "real), and hand it to the masked softmax. An element-wise choice between two tensors "
            "does it without a loop.",
            "section 3 of this chapter builds a causal 2-D valid_lens by hand, and section 4 shows "
            "what a row with no visible key needs.",
        ),
        cases=(
            Case("scores (2, 4, 4), valid_lens=tensor([4, 2]) (the second sequence ends with 2 "
                 "padding tokens)", lambda: (_scores(2, 4, 4, seed=10), torch.tensor([4, 2]))),
            Case("scores (1, 2, 5), valid_lens=tensor([5]) (2 queries: positions 3 and 4 of 5)",
                 lambda: (_scores(1, 2, 5, seed=11), torch.tensor([5]))),
            Case("scores (2, 3, 3), valid_lens=tensor([3, 0]) (an empty sequence)",
                 lambda: (_scores(2, 3, 3, seed=12), torch.tensor([3, 0])), hidden=True),
            Case("scores (2, 3, 6), valid_lens=tensor([4, 6]) (the last query of the first "
                 "sequence is padding)",
                 lambda: (_scores(2, 3, 6, seed=13), torch.tensor([4, 6])), hidden=True),
            Case("one decoding step: scores (3, 1, 5), valid_lens=tensor([5, 2, 4])",
                 lambda: (_scores(3, 1, 5, seed=14), torch.tensor([5, 2, 4])), hidden=True),
            Case("scores (2, 5, 5) of size 50, valid_lens=tensor([5, 3])",
                 lambda: (_scores(2, 5, 5, seed=15, scale=50.0), torch.tensor([5, 3])), hidden=True),
        ),
    ),
)
