"""The per-time-step attention layer of many Keras answers, ported to PyTorch as it is.

The Keras original (the StackOverflow "attention layer" for an LSTM with
``return_sequences=True``)::

    class attention(Layer):
        def build(self, input_shape):
            self.W = self.add_weight(shape=(input_shape[-1], 1), initializer="normal")
            self.b = self.add_weight(shape=(input_shape[1], 1), initializer="zeros")
        def call(self, x):
            e = K.tanh(K.dot(x, self.W) + self.b)      # (batch, steps, 1)
            a = K.softmax(e, axis=1)                   # softmax over time
            output = x * a
            return output if self.return_sequences else K.sum(output, axis=1)

``b`` has shape ``(steps, 1)``: one bias per POSITION, its size fixed by the
training sequence length. So the layer fails with a shape error on any other
length, and its weights depend on where a word sits, not only on what it is.
``tanh`` also caps every energy in [-1, 1], so no step can get more than e^2 ~ 7.4
times the weight of another. The original ignores masks; here ``valid_lens``
is optional, to show what passing the mask changes.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention.masking import masked_softmax
from utils.attention.pooling import require_outputs
from utils.validate import require_int


class PerStepAttention(nn.Module):
    """``tanh(x W + b)`` with ``b`` of shape ``(num_steps, 1)``, softmax over time.

    ``forward(x (batch, num_steps, num_hiddens), valid_lens=None)`` returns
    ``(output, weights)``: ``output`` is ``(batch, num_hiddens)``, or
    ``(batch, num_steps, num_hiddens)`` (every step scaled by its weight) with
    ``return_sequences=True``; ``weights`` is ``(batch, num_steps)``.
    Without ``valid_lens`` padding steps get weight, as in the Keras original.
    Any other number of steps raises the original's broadcasting ``RuntimeError``.

    Used in chapter 04 §4; tested in tests/test_attention_pooling.py.
    """

    def __init__(self, num_hiddens: int, num_steps: int, return_sequences: bool = False):
        super().__init__()
        require_int("num_hiddens", num_hiddens, at_least=1)
        require_int("num_steps", num_steps, at_least=1)
        self.num_hiddens, self.num_steps = num_hiddens, num_steps
        self.return_sequences = return_sequences
        self.W = nn.Parameter(torch.randn(num_hiddens, 1) * 0.05)  # Keras "normal" initializer
        self.b = nn.Parameter(torch.zeros(num_steps, 1))  # one bias per position

    def forward(self, x: torch.Tensor, valid_lens: torch.Tensor | None = None):
        require_outputs(x, self.num_hiddens, name="x")
        # (batch, steps, 1) + (num_steps, 1): broadcasting fails unless steps == num_steps
        energies = torch.tanh(x @ self.W + self.b).squeeze(-1)  # (batch, steps)
        weights = masked_softmax(energies, valid_lens)
        output = x * weights.unsqueeze(-1)  # (batch, steps, num_hiddens)
        return (output if self.return_sequences else output.sum(dim=1)), weights
