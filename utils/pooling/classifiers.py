"""LSTM and Bi-LSTM sentence classifiers with three ways to pool the time steps.

``embedding -> (Bi-)LSTM over the valid steps (packed) -> pooling -> linear``, where
the pooling turns ``(batch, steps, num_outputs)`` into ``(batch, num_outputs)``:

- ``"last"``: the state after the last VALID step (for a Bi-LSTM, the forward
  direction's after the last token and the backward direction's after the first);
- ``"mean"``: the mean of the outputs over the valid steps;
- ``"attention"``: :class:`utils.attention.AttentionPooling`;
- ``"per_step"``: the Keras-style :class:`utils.attention.PerStepAttention`
  (needs ``num_steps``; ``mask_per_step=False`` reproduces the original, unmasked).

Standard library and torch only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from utils.attention.masking import length_mask
from utils.attention.per_step import PerStepAttention
from utils.attention.pooling import AttentionPooling, require_outputs
from utils.validate import require_lengths

POOLINGS = ("last", "mean", "attention", "per_step")


def last_valid_state(outputs: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    """``outputs[b, valid_lens[b] - 1]`` for every ``b``: ``(batch, steps, h)`` -> ``(batch, h)``.

    For a unidirectional LSTM this is its state after the last real token;
    ``outputs[:, -1]`` would be the state after the padding.

    No chapter builds it; tested in tests/test_attention_pooling.py.
    """
    require_outputs(outputs, outputs.shape[-1] if torch.is_tensor(outputs) and outputs.dim() else 0)
    require_lengths("valid_lens", valid_lens, shape=(outputs.shape[0],), low=1, high=outputs.shape[1], high_is="steps")
    index = (valid_lens.to(outputs.device) - 1).long()  # (batch,)
    return outputs[torch.arange(outputs.shape[0], device=outputs.device), index]


def mean_over_valid(outputs: torch.Tensor, valid_lens: torch.Tensor) -> torch.Tensor:
    """The mean of ``outputs`` over the valid steps only: ``(batch, steps, h)`` -> ``(batch, h)``.

    Built in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    require_outputs(outputs, outputs.shape[-1] if torch.is_tensor(outputs) and outputs.dim() else 0)
    require_lengths("valid_lens", valid_lens, shape=(outputs.shape[0],), low=1, high=outputs.shape[1], high_is="steps")
    keep = length_mask(valid_lens.to(outputs.device), outputs.shape[1]).unsqueeze(-1)  # (batch, steps, 1)
    total = outputs.masked_fill(~keep, 0.0).sum(dim=1)
    return total / valid_lens.to(outputs.device, outputs.dtype).unsqueeze(-1)


class SentenceClassifier(nn.Module):
    """Token ids ``(batch, steps)`` and ``valid_lens`` ``(batch,)`` -> class logits ``(batch, num_classes)``.

    ``forward`` returns ``(logits, weights)``: the attention weights ``(batch, steps)``
    for the two attention poolings, ``None`` for ``"last"`` and ``"mean"``.

    Built in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """

    def __init__(self, vocab_size: int, num_embed: int, num_hiddens: int, *, pooling: str = "attention",
                 bidirectional: bool = False, num_classes: int = 2, num_steps: int | None = None,
                 mask_per_step: bool = True):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
        if pooling == "per_step" and num_steps is None:
            raise ValueError("pooling='per_step' needs num_steps (its bias has one entry per position)")
        self.pooling, self.bidirectional, self.mask_per_step = pooling, bidirectional, mask_per_step
        self.embedding = nn.Embedding(vocab_size, num_embed, padding_idx=0)
        self.lstm = nn.LSTM(num_embed, num_hiddens, batch_first=True, bidirectional=bidirectional)
        num_outputs = num_hiddens * (2 if bidirectional else 1)
        if pooling == "attention":
            self.pool = AttentionPooling(num_outputs)
        elif pooling == "per_step":
            self.pool = PerStepAttention(num_outputs, num_steps)
        self.classify = nn.Linear(num_outputs, num_classes)

    def encode(self, ids: torch.Tensor, valid_lens: torch.Tensor):
        """LSTM over the valid steps only: outputs ``(batch, steps, num_outputs)`` (zeros at padding)
        and the final states ``h_n`` ``(directions, batch, num_hiddens)``."""
        if not torch.is_tensor(ids) or ids.dim() != 2 or ids.is_floating_point():
            shape = tuple(ids.shape) if torch.is_tensor(ids) else type(ids).__name__
            raise ValueError(f"ids must be an integer tensor of shape (batch, steps); got {shape}")
        require_lengths("valid_lens", valid_lens, shape=(ids.shape[0],), low=1, high=ids.shape[1], high_is="steps")
        packed = pack_padded_sequence(self.embedding(ids), valid_lens.cpu(), batch_first=True,
                                      enforce_sorted=False)
        packed_outputs, (h_n, _) = self.lstm(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=ids.shape[1])
        return outputs, h_n

    def forward(self, ids: torch.Tensor, valid_lens: torch.Tensor):
        outputs, h_n = self.encode(ids, valid_lens)
        weights = None
        if self.pooling == "last":
            # h_n of a packed sequence is taken at each sequence's own last valid step;
            # a Bi-LSTM's backward direction ends at step 0, having read the whole sentence
            vector = torch.cat(list(h_n), dim=-1)  # (batch, num_outputs)
        elif self.pooling == "mean":
            vector = mean_over_valid(outputs, valid_lens)
        elif self.pooling == "attention":
            vector, weights = self.pool(outputs, valid_lens)
        else:
            vector, weights = self.pool(outputs, valid_lens if self.mask_per_step else None)
        return self.classify(vector), weights
