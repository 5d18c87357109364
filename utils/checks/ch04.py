"""Chapter 04 (LSTM attention pooling): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch

from utils.attention.pooling import AttentionPooling
from utils.checks.compare import expect
from utils.checks.core import Case, Exercise, register
from utils.classifiers import last_valid_state, mean_over_valid


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
            "section 3 of this chapter defines the 'mean' pooling; Exercise 1.4 of chapter 01 "
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
)
