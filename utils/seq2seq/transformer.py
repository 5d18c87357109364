"""The Transformer translator's encoder and decoder (Vaswani et al., 2017), for ``Seq2Seq``.

They plug into what chapter 07 built: the encoder returns a ``Memory`` (no LSTM state), and
the decoder has the interface of ``utils.seq2seq.decoders`` (``init_state``, ``forward``,
``step``, ``reorder_state``), so training, checkpoints, greedy and beam search and ``translate``
work unchanged. Its decoding "state" is a key/value cache: each step feeds one token and
attends to the cached keys and values of the tokens before it, instead of recomputing them.

Shapes: ``src`` ``(batch, src_steps)``, ``tgt_in`` ``(batch, tgt_steps)`` token ids; the model
width is ``d_model`` (``ModelConfig.num_hiddens``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from utils.attention import (
    LayerCache,
    PositionalEncoding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    length_mask,
)
from utils.seq2seq.decoders import Decoder
from utils.seq2seq.encoder import Memory, require_source


def _scaled_init(embedding: nn.Embedding) -> nn.Embedding:
    """Embeddings drawn with std ``d_model ** -0.5``: multiplied by ``sqrt(d_model)`` in ``forward``
    they have unit scale, like the positional encodings added to them (fairseq's choice)."""
    nn.init.normal_(embedding.weight, std=embedding.embedding_dim ** -0.5)
    with torch.no_grad():
        embedding.weight[embedding.padding_idx].zero_()
    return embedding


def _final_norm(d_model: int, norm_first: bool) -> nn.Module:
    """Pre-LN leaves the residual stream unnormalised, so a last LayerNorm closes the stack;
    post-LN layers already end with one."""
    return nn.LayerNorm(d_model) if norm_first else nn.Identity()


class TransformerEncoder(nn.Module):
    """Embedding × sqrt(d_model) + positions -> dropout -> ``num_layers`` encoder layers -> LayerNorm.

    ``forward(src (batch, src_steps), src_valid_lens (batch,)) -> Memory(outputs (batch, src_steps,
    d_model), None, src_valid_lens)``; padded source positions are never attended to and their
    outputs are zeros, so appending padding changes nothing.

    Used in chapter 08 §5; tested in tests/test_seq2seq_transformer.py.
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, ffn_hiddens: int, num_layers: int,
                 dropout: float = 0.0, pad_id: int = 0, norm_first: bool = True):
        super().__init__()
        self.d_model = d_model
        self.embedding = _scaled_init(nn.Embedding(vocab_size, d_model, padding_idx=pad_id))
        self.positions = PositionalEncoding(d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(TransformerEncoderLayer(d_model, num_heads, ffn_hiddens, dropout,
                                                            norm_first=norm_first) for _ in range(num_layers))
        self.norm = _final_norm(d_model, norm_first)

    def forward(self, src: torch.Tensor, src_valid_lens: torch.Tensor) -> Memory:
        require_source(src, src_valid_lens)
        src_valid_lens = src_valid_lens.to(src.device)
        x = self.dropout(self.positions(self.embedding(src) * math.sqrt(self.d_model)))  # (batch, S, d)
        # the lengths were checked above: every layer gets the same mask (lengths given to each
        # layer would be checked again there, one device synchronisation per layer on a GPU)
        keep = length_mask(src_valid_lens, src.shape[1])  # (batch, S), True = a real token
        padding = ~keep
        for layer in self.layers:
            x, _ = layer(x, key_padding_mask=padding)
        outputs = self.norm(x) * keep.unsqueeze(-1).to(x.dtype)
        return Memory(outputs, None, src_valid_lens)


class TransformerState(NamedTuple):
    """The decoder's state while decoding: one ``LayerCache`` per layer.

    ``steps``: how many target positions have been fed (the position of the next one).

    Used in chapter 08 §3; tested in tests/test_seq2seq_transformer.py.
    """

    layers: tuple[LayerCache, ...]

    @property
    def steps(self) -> int:
        return self.layers[0].self_k.shape[2]


class TransformerDecoder(Decoder):
    """Embedding × sqrt(d_model) + positions -> dropout -> ``num_layers`` decoder layers -> LayerNorm
    -> output layer.

    ``forward(tgt_in (batch, T), state, memory) -> (logits (batch, T, vocab), state, weights (batch, T,
    src_steps))``: ``tgt_in`` continues the positions cached in ``state`` (none after ``init_state``:
    teacher forcing over the whole target). ``weights`` is the last layer's cross-attention averaged
    over its heads; ``self.head_weights`` keeps the same per head, ``(batch, heads, T, src_steps)``.
    ``step`` (from ``Decoder``) feeds one token: equal to ``forward`` over the whole prefix (tested).

    Used in chapter 08 §3; tested in tests/test_seq2seq_transformer.py.
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, ffn_hiddens: int, num_layers: int,
                 dropout: float = 0.0, pad_id: int = 0, norm_first: bool = True):
        super().__init__(vocab_size, d_model, d_model, dropout, pad_id)  # embedding, dropout, output
        self.d_model, self.num_heads = d_model, num_heads
        _scaled_init(self.embedding)
        self.positions = PositionalEncoding(d_model)
        self.layers = nn.ModuleList(TransformerDecoderLayer(d_model, num_heads, ffn_hiddens, dropout,
                                                            norm_first=norm_first) for _ in range(num_layers))
        self.norm = _final_norm(d_model, norm_first)
        self.head_weights: torch.Tensor | None = None

    def init_state(self, memory: Memory) -> TransformerState:
        """Empty self-attention caches and every layer's keys/values of the encoder outputs."""
        return TransformerState(tuple(layer.start_cache(memory.outputs) for layer in self.layers))

    def reorder_state(self, state: TransformerState, indices: torch.Tensor) -> TransformerState:
        return TransformerState(tuple(cache.index_select(indices) for cache in state.layers))

    def forward(self, tgt_in: torch.Tensor, state: TransformerState, memory: Memory):
        offset = state.steps
        x = self.dropout(self.positions(self.embedding(tgt_in) * math.sqrt(self.d_model), offset))
        caches, last = [], len(self.layers) - 1
        # the encoder checked the source lengths: one mask for every layer (as in the encoder)
        source_padding = ~length_mask(memory.valid_lens, memory.outputs.shape[1])  # (batch, src_steps)
        for index, (layer, cache) in enumerate(zip(self.layers, state.layers, strict=True)):
            # only the last layer's weights are returned: the others take the fused kernel
            x, cache, weights = layer(x, cache=cache, memory_key_padding_mask=source_padding,
                                      need_weights=index == last)
            caches.append(cache)
        self.head_weights = weights.detach()  # (batch, heads, T, src_steps)
        logits = self.output(self.norm(x))  # (batch, T, vocab)
        return logits, TransformerState(tuple(caches)), weights.mean(dim=1)
