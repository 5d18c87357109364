"""Chapter 04 (LSTM attention pooling): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.masking import length_mask, masked_softmax
from utils.attention.pooling import AttentionPooling
from utils.course.checks.compare import compare_values, expect, set_linear_weight
from utils.course.checks.core import Case, Exercise, register
from utils.pooling.classifiers import last_valid_state, mean_over_valid


def _outputs(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _with_inf_padding(outputs: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    padding = torch.arange(outputs.shape[1]) >= valid_lens[:, None]  # (batch, steps)
    return outputs.masked_fill(padding.unsqueeze(-1), float("inf"))


def _pool_with_shared_weights(answer, args):
    """Build the class, load the reference's weights (same names), pool ``args``."""
    num_hiddens, num_energy_hiddens, outputs, valid_lens = args
    torch.manual_seed(0)
    reference = AttentionPooling(num_hiddens, num_energy_hiddens)
    layer = answer(num_hiddens, num_energy_hiddens)
    layer.load_state_dict(reference.state_dict())
    with torch.no_grad():
        return tuple(layer(outputs, valid_lens))


def reference_redundancy_penalty(A: torch.Tensor) -> torch.Tensor:
    """Lin et al.'s penalty ``||A A^T - I||_F^2`` for every passage: ``(batch, heads, steps)`` -> ``(batch,)``."""
    identity = torch.eye(A.shape[1], dtype=A.dtype, device=A.device)
    return ((A @ A.transpose(1, 2) - identity) ** 2).sum(dim=(1, 2))


class ReferenceStructuredSelfAttention(nn.Module):
    """Lin et al. (2017): ``A = softmax(W_s2 tanh(W_s1 H^T))`` over the steps, ``M = A H``.

    ``forward(outputs, valid_lens=None)`` -> ``(M, A)``: ``M`` is ``(batch, num_heads, num_hiddens)``,
    ``A`` is ``(batch, num_heads, steps)``, every head's row a masked softmax over the valid steps.
    """

    def __init__(self, num_hiddens: int, num_energy_hiddens: int, num_heads: int):
        super().__init__()
        self.W_s1 = nn.Linear(num_hiddens, num_energy_hiddens, bias=False)
        self.W_s2 = nn.Linear(num_energy_hiddens, num_heads, bias=False)

    def forward(self, outputs: torch.Tensor, valid_lens: torch.Tensor | None = None):
        if valid_lens is not None:
            keep = length_mask(valid_lens.to(outputs.device), outputs.shape[1])  # (batch, steps)
            outputs = outputs.masked_fill(~keep.unsqueeze(-1), 0.0)
        energies = self.W_s2(torch.tanh(self.W_s1(outputs))).transpose(1, 2)  # (batch, heads, steps)
        A = masked_softmax(energies, valid_lens)
        return A @ outputs, A


def _attention_rows(batch: int, heads: int, steps: int, seed: int, valid_lens=None) -> torch.Tensor:
    """Random attention matrices ``(batch, heads, steps)``: rows sum to 1 over the valid steps."""
    return masked_softmax(2 * _outputs(batch, heads, steps, seed=seed), valid_lens)


def _one_hot_rows(*rows: list[int], steps: int) -> torch.Tensor:
    """One passage per argument: head ``h`` puts all its weight on step ``rows[h]``."""
    A = torch.zeros(len(rows), len(rows[0]), steps)
    for b, row in enumerate(rows):
        for head, step in enumerate(row):
            A[b, head, step] = 1.0
    return A


def _structured_with_shared_weights(answer, args):
    """Build the learner's class, give it the reference's weights (same names), run it: ``(M, A)``."""
    (num_hiddens, num_energy_hiddens, num_heads), outputs, valid_lens = args
    torch.manual_seed(0)
    reference = ReferenceStructuredSelfAttention(num_hiddens, num_energy_hiddens, num_heads)
    layer = answer(num_hiddens, num_energy_hiddens, num_heads)
    for name in ("W_s1", "W_s2"):
        set_linear_weight(layer, name, getattr(reference, name).weight)
    with torch.no_grad():
        result = layer(outputs, valid_lens)
    return tuple(result) if isinstance(result, (tuple, list)) else result


def _compare_structured(got, expected):
    if not isinstance(got, tuple) or len(got) != 2:
        return "your layer should return a tuple (M, A)"
    M, A = got
    if torch.is_tensor(A) and torch.is_tensor(expected[1]) and tuple(A.shape) != tuple(expected[1].shape):
        if tuple(A.shape) == tuple(expected[1].transpose(1, 2).shape):
            return (f"your A has shape {tuple(A.shape)}; expected (batch, num_heads, steps) = "
                    f"{tuple(expected[1].shape)}: one row of weights per head")
    if torch.is_tensor(A) and A.is_floating_point() and torch.isnan(A).any():
        return "your A contains NaN"
    problem = compare_values(A, expected[1], what="your A")
    if problem:
        return problem
    if torch.is_tensor(M) and M.is_floating_point() and torch.isnan(M).any():
        return "your M contains NaN although A is right (what do the padded steps hold?)"
    return compare_values(M, expected[0], what="your M")


def _compare_penalty(got, expected):
    if torch.is_tensor(got) and got.dim() == 0 and expected.dim() == 1:
        return (f"your penalty is one number for the whole batch; expected one per passage, shape "
                f"{tuple(expected.shape)}")
    return compare_values(got, expected, what="your penalty")


register(
    Exercise(
        id="4.1",
        title="the state at the last valid step",
        points=2,
        target="last_state",
        reference=last_valid_state,
        hints=(
            "sequence b's last real step is at position valid_lens of b minus 1; the tensor's "
            "last position is padding for every shorter sequence.",
            "pick one step per sequence with advanced indexing: one index tensor for the rows (0,"
            " 1, …, batch − 1) and one of the same length for the steps. The result is (batch, "
            "num_hiddens).",
            "section 3 of this chapter describes the 'last' pooling, which reads each passage's "
            "own last valid step.",
        ),
        cases=(
            Case("outputs (2, 4, 3), valid_lens=tensor([2, 4])",
                 lambda: (_outputs(2, 4, 3, seed=1), torch.tensor([2, 4]))),
            Case("outputs (3, 5, 2), valid_lens=tensor([1, 5, 3])",
                 lambda: (_outputs(3, 5, 2, seed=2), torch.tensor([1, 5, 3]))),
            Case("outputs (4, 6, 5), valid_lens=tensor([6, 1, 1, 2])",
                 lambda: (_outputs(4, 6, 5, seed=3), torch.tensor([6, 1, 1, 2])), hidden=True),
        ),
    ),
    Exercise(
        id="4.2",
        title="the mean over the valid steps",
        points=2,
        target="mean_pool",
        reference=mean_over_valid,
        hints=(
            "average over the real steps only. The padding may hold anything (huge values in a "
            "hidden case), so it must not reach the sum, and the divisor is each sequence's valid"
            " length, not the number of steps.",
            "compare the step positions with valid_lens to get a (batch, steps) mask, give it an "
            "axis of size 1 at the end so that it covers the features, set the padded steps to 0 "
            "in a new tensor, sum over the steps and divide by valid_lens shaped (batch, 1), in "
            "the outputs' float type.",
            "section 3 of this chapter defines the 'mean' pooling; Exercise 1.3 of chapter 01 "
            "builds the same mask over the steps.",
        ),
        cases=(
            Case("outputs (2, 4, 3), valid_lens=tensor([2, 4])",
                 lambda: (_outputs(2, 4, 3, seed=4), torch.tensor([2, 4]))),
            Case("outputs (3, 5, 2), valid_lens=tensor([1, 5, 3])",
                 lambda: (_outputs(3, 5, 2, seed=5), torch.tensor([1, 5, 3]))),
            Case("outputs (2, 6, 4) with huge values in the padding, valid_lens=tensor([3, 1])",
                 lambda: (torch.cat([_outputs(2, 3, 4, seed=6), torch.full((2, 3, 4), 1e6)], dim=1),
                          torch.tensor([3, 1])), hidden=True),
        ),
    ),
    Exercise(
        id="4.3",
        title="the redundancy penalty of several attention heads",
        points=3,
        target="redundancy_penalty",
        reference=reference_redundancy_penalty,
        compare=_compare_penalty,
        hints=(
            "the penalty compares every pair of heads: entry (i, j) of A times its transpose is the"
            " overlap of head i's weights with head j's. Off the diagonal it should be 0 (the heads"
            " look at different steps), on the diagonal 1 (a head on one step only). One number per"
            " passage, the sum of the squared differences, not their mean.",
            "per passage, multiply A (heads, steps) by its transpose over the steps, a (heads, "
            "heads) matrix, batched; subtract the identity of size num_heads (built on A's device,"
            " in A's float type), square every entry and sum over the last two axes. The result is"
            " (batch,).",
            "the markdown cell before Exercise 4.3 gives the formula; chapter 02's batched matrix "
            "products are the tool.",
        ),
        cases=(
            Case("A of shape (2, 3, 5), rows summing to 1",
                 lambda: (_attention_rows(2, 3, 5, seed=11),)),
            Case("one-hot heads: passage 0 on steps 0, 1, 2 (penalty 0), passage 1 all on step 4 (penalty 6)",
                 lambda: (_one_hot_rows([0, 1, 2], [4, 4, 4], steps=5),)),
            Case("one head, A of shape (3, 1, 6)",
                 lambda: (_attention_rows(3, 1, 6, seed=12),), hidden=True),
            Case("A (2, 4, 7) from padded passages, valid_lens=tensor([7, 2]): fewer steps than heads",
                 lambda: (_attention_rows(2, 4, 7, seed=13, valid_lens=torch.tensor([7, 2])),), hidden=True),
        ),
    ),
    Exercise(
        id="4.4",
        title="an attention pooling layer",
        points=4,
        target="MyAttentionPooling",
        reference=AttentionPooling,
        call=_pool_with_shared_weights,
        compare=expect("your (vector, weights)", nan_message="your (vector, weights) contain NaN"),
        hints=(
            "each step gets an energy from the small MLP, a masked softmax over the steps turns "
            "the energies into weights, and the vector is the weighted sum of the outputs. A zero"
            " weight is not enough for the padding (0 × inf is NaN): the padded outputs must be "
            "zeroed before the sum.",
            "with valid lengths, first set the padded steps of outputs to 0 (a new tensor). "
            "Energies: project, tanh, score, then drop the last axis: (batch, steps). Weights: "
            "masked_softmax over the steps. Vector: the weights, given an axis at the end, times "
            "the outputs, summed over the steps: (batch, num_hiddens).",
            "section 2 of this chapter gives the equations and runs the library's "
            "AttentionPooling, which has the same interface.",
        ),
        cases=(
            Case("MyAttentionPooling(6, 5) on outputs (2, 4, 6), valid_lens=tensor([2, 4])",
                 lambda: (6, 5, _outputs(2, 4, 6, seed=7), torch.tensor([2, 4]))),
            Case("MyAttentionPooling(4, 3) on outputs (3, 5, 4), valid_lens=None",
                 lambda: (4, 3, _outputs(3, 5, 4, seed=8), None)),
            Case("MyAttentionPooling(6, 8) on outputs (3, 5, 6) with inf in the padding, "
                 "valid_lens=tensor([5, 1, 3])",
                 lambda: (6, 8, _with_inf_padding(_outputs(3, 5, 6, seed=9), torch.tensor([5, 1, 3])),
                          torch.tensor([5, 1, 3])), hidden=True),
        ),
    ),
    Exercise(
        id="4.5",
        title="structured self-attention: several pooling heads",
        points=5,
        target="StructuredSelfAttention",
        reference=ReferenceStructuredSelfAttention,
        call=_structured_with_shared_weights,
        compare=_compare_structured,
        hints=(
            "each head is an attention pooling of its own: every head scores every step, and the "
            "softmax runs over the steps, separately for each head, never over the heads. With "
            "valid lengths the padding gets no weight in any head, and values in the padding (even "
            "inf) must not reach M.",
            "outputs (batch, steps, num_hiddens) through self.W_s1, tanh and self.W_s2 give "
            "(batch, steps, num_heads): move the heads before the steps, then the masked softmax "
            "of chapter 01 over the last axis (it takes (batch,) valid lengths for every row). "
            "Zero the padded steps of outputs first, as in Exercise 4.4. M is A times the outputs,"
            " batched: (batch, num_heads, num_hiddens).",
            "section 2 of this chapter is the one-head version; chapter 01 shows the masked softmax"
            " on (batch, queries, keys) scores, here (batch, heads, steps).",
        ),
        cases=(
            Case("StructuredSelfAttention(6, 5, 3) on outputs (2, 4, 6), valid_lens=None",
                 lambda: ((6, 5, 3), _outputs(2, 4, 6, seed=21), None)),
            Case("StructuredSelfAttention(4, 8, 2) on outputs (3, 5, 4), valid_lens=tensor([2, 5, 3])",
                 lambda: ((4, 8, 2), _outputs(3, 5, 4, seed=22), torch.tensor([2, 5, 3]))),
            Case("StructuredSelfAttention(6, 4, 1) (one head) on outputs (2, 3, 6), valid_lens=None",
                 lambda: ((6, 4, 1), _outputs(2, 3, 6, seed=23), None), hidden=True),
            Case("StructuredSelfAttention(5, 6, 4) on outputs (3, 6, 5) with inf in the padding, "
                 "valid_lens=tensor([6, 1, 3])",
                 lambda: ((5, 6, 4), _with_inf_padding(_outputs(3, 6, 5, seed=24), torch.tensor([6, 1, 3])),
                          torch.tensor([6, 1, 3])), hidden=True),
        ),
    ),
)
