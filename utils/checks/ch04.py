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
        hint="the last real token of sequence b sits at index valid_lens[b] - 1: index the batch "
        "with torch.arange(batch) and the steps with valid_lens - 1 (outputs[:, -1] is padding).",
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
        hint="zero the padding steps with a (batch, steps, 1) mask, sum over the steps, then divide "
        "by valid_lens (not by the number of steps).",
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
        hint="energies = self.score(torch.tanh(self.project(outputs))).squeeze(-1); weights = "
        "masked_softmax(energies, valid_lens); vector = (weights.unsqueeze(-1) * outputs).sum(1). "
        "Zero the padding of outputs first (masked_fill), so inf or NaN there cannot leak into the vector.",
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
