"""The encoder: embedding + (bi)LSTM over padded batches, packed so padding never leaks in."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from utils.validate import require_lengths

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, batch, num_hiddens)


class Memory(NamedTuple):
    """What the encoder hands to the decoder.

    ``outputs``: ``(batch, src_steps, num_hiddens)`` top-layer outputs, zeros at padded steps
    (``2 * num_hiddens`` for a bidirectional encoder built with ``project_outputs=False``).
    ``state``: ``(h, c)``, each ``(num_layers, batch, num_hiddens)``: the final state at each
    sentence's last *valid* step (``None`` from the transformer's encoder, which has no state).
    ``valid_lens``: ``(batch,)`` source lengths (for the masks).

    Used in chapter 06 §3; tested in tests/test_seq2seq_model.py.
    """

    outputs: torch.Tensor
    state: LSTMState | None
    valid_lens: torch.Tensor

    def index_select(self, indices: torch.Tensor) -> Memory:
        """The memory of sentences ``indices`` (batch axis), e.g. each repeated ``beam_size`` times."""
        state = None if self.state is None else tuple(part.index_select(1, indices) for part in self.state)
        return Memory(self.outputs.index_select(0, indices), state, self.valid_lens.index_select(0, indices))


def require_source(src: torch.Tensor, src_valid_lens: torch.Tensor) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the argument unless the shapes and lengths fit."""
    if not torch.is_tensor(src) or src.dtype != torch.long or src.dim() != 2:
        got = f"shape {tuple(src.shape)}, dtype {src.dtype}" if torch.is_tensor(src) else type(src).__name__
        raise TypeError(f"src must be an int64 tensor of shape (batch, src_steps); got {got}")
    require_lengths("src_valid_lens", src_valid_lens, shape=(src.shape[0],), low=1, high=src.shape[1],
                    high_is="src_steps", context=f" for src of shape {tuple(src.shape)}")


class Seq2SeqEncoder(nn.Module):
    """Embedding -> dropout -> (bidirectional) multi-layer LSTM over the valid steps only.

    ``forward(src (batch, src_steps), src_valid_lens (batch,)) -> Memory``. The LSTM reads a
    ``PackedSequence``, so each sentence's final state is taken at its last valid step and
    appending padding changes nothing. A bidirectional encoder concatenates the two directions
    (``2 * num_hiddens``) and projects outputs and final states back to ``num_hiddens``, so every
    decoder sees ``num_hiddens`` whatever the encoder. ``project_outputs=False`` (for the plain
    decoder, which reads only the final state) leaves bidirectional outputs at ``2 * num_hiddens``
    and creates no output projection, so no parameter goes unused (DDP insists on that).

    Built in chapter 06 §3 as ``Encoder``; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0, bidirectional: bool = False, pad_id: int = 0,
                 project_outputs: bool = True):
        super().__init__()
        self.num_hiddens, self.num_layers, self.bidirectional = num_hiddens, num_layers, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        # dropout between stacked layers only (PyTorch warns when there is one layer)
        self.rnn = nn.LSTM(embed_size, num_hiddens, num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        self.project_outputs = bidirectional and project_outputs
        if self.project_outputs:
            self.output_proj = nn.Linear(2 * num_hiddens, num_hiddens)
        if bidirectional:
            self.h_proj = nn.Linear(2 * num_hiddens, num_hiddens)
            self.c_proj = nn.Linear(2 * num_hiddens, num_hiddens)

    def forward(self, src: torch.Tensor, src_valid_lens: torch.Tensor) -> Memory:
        require_source(src, src_valid_lens)
        batch, src_steps = src.shape
        embedded = self.dropout(self.embedding(src))  # (batch, src_steps, embed)
        # pack_padded_sequence wants the lengths on the CPU; enforce_sorted=False sorts inside
        packed = pack_padded_sequence(embedded, src_valid_lens.cpu(), batch_first=True,
                                      enforce_sorted=False)
        packed_outputs, (h, c) = self.rnn(packed)
        # back to (batch, src_steps, directions * H), zeros after each valid length
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=src_steps)
        if self.bidirectional:
            # h, c: (layers * 2, batch, H), directions interleaved per layer -> (layers, batch, 2H)
            h = h.view(self.num_layers, 2, batch, self.num_hiddens).transpose(1, 2).flatten(2)
            c = c.view(self.num_layers, 2, batch, self.num_hiddens).transpose(1, 2).flatten(2)
            h, c = self.h_proj(h), self.c_proj(c)  # (layers, batch, H)
        if self.project_outputs:
            outputs = self.output_proj(outputs)  # (batch, src_steps, H)
            # the projection's bias would make padded steps non-zero: keep them zero
            keep = torch.arange(src_steps, device=src.device) < src_valid_lens.to(src.device)[:, None]
            outputs = outputs * keep.unsqueeze(-1).to(outputs.dtype)
        return Memory(outputs, (h.contiguous(), c.contiguous()), src_valid_lens.to(src.device))
