"""Attention pooling: one weight per time step, then a weighted sum of the steps.

The layer that sits between an LSTM and a classifier. Each step ``h_t`` of the
LSTM's outputs gets an energy from a small MLP, ``e_t = v^T tanh(W h_t + b)``;
a masked softmax over time turns the energies into weights, and the sentence
vector is ``sum_t a_t h_t``. The MLP looks at one step at a time, so the layer
works for any number of steps (unlike the per-position bias of
:mod:`utils.attention.per_step`).
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.masking import length_mask, masked_softmax
from utils.validate import require_int


def require_outputs(outputs, num_hiddens: int, name: str = "outputs") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``outputs`` is a float ``(batch, steps, num_hiddens)``."""
    if not torch.is_tensor(outputs):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, steps, {num_hiddens}); "
                        f"got {type(outputs).__name__}")
    if not outputs.is_floating_point():
        raise TypeError(f"{name} must be floating point; got dtype {outputs.dtype}")
    if outputs.dim() != 3 or outputs.shape[-1] != num_hiddens:
        raise ValueError(f"{name} must have shape (batch, steps, {num_hiddens}); "
                         f"got shape {tuple(outputs.shape)}")
    if outputs.shape[1] == 0:
        raise ValueError(f"{name} has no time steps (shape {tuple(outputs.shape)}); need steps >= 1")


class AttentionPooling(nn.Module):
    """Pool ``(batch, steps, num_hiddens)`` into ``(batch, num_hiddens)`` with learned weights.

    Args:
        num_hiddens: size of each time step's vector (the LSTM's output size).
        num_energy_hiddens: width of the projection MLP (default: ``num_hiddens``).

    ``forward(outputs, valid_lens=None)`` returns ``(vector, weights)``:
    ``vector`` is ``(batch, num_hiddens)``, ``weights`` is ``(batch, steps)``, each row
    summing to 1 over its valid steps. Steps at or beyond ``valid_lens`` get exactly
    zero weight and their values never reach the vector (even NaN or inf there).

    Built in chapter 04 §2; tested in tests/test_attention_pooling.py.
    """

    def __init__(self, num_hiddens: int, num_energy_hiddens: int | None = None):
        super().__init__()
        require_int("num_hiddens", num_hiddens, at_least=1)
        require_int("num_energy_hiddens", num_energy_hiddens, at_least=1, none_ok=True)
        self.num_hiddens = num_hiddens
        num_energy_hiddens = num_energy_hiddens or num_hiddens
        self.project = nn.Linear(num_hiddens, num_energy_hiddens)  # W h_t + b
        self.score = nn.Linear(num_energy_hiddens, 1, bias=False)  # v^T tanh(.)

    def energies(self, outputs: torch.Tensor) -> torch.Tensor:
        """``(batch, steps)`` unnormalised scores, one per time step."""
        return self.score(torch.tanh(self.project(outputs))).squeeze(-1)

    def forward(self, outputs: torch.Tensor, valid_lens: torch.Tensor | None = None):
        require_outputs(outputs, self.num_hiddens)
        if valid_lens is not None and (not torch.is_tensor(valid_lens) or valid_lens.dim() != 1):
            shape = tuple(valid_lens.shape) if torch.is_tensor(valid_lens) else type(valid_lens).__name__
            raise ValueError(f"valid_lens must be a 1-D tensor (batch,) = ({outputs.shape[0]},) or None; "
                             f"got {shape}")
        if valid_lens is not None:
            # padding may hold anything (zeros from a packed LSTM, garbage, NaN): drop it
            # before it can reach the energies' gradient or the weighted sum (0 * NaN = NaN)
            keep = length_mask(valid_lens.to(outputs.device), outputs.shape[1])  # (batch, steps)
            outputs = outputs.masked_fill(~keep.unsqueeze(-1), 0.0)
        weights = masked_softmax(self.energies(outputs), valid_lens)  # (batch, steps)
        vector = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)  # (batch, num_hiddens)
        return vector, weights
