"""The encoder-decoder model and ``build_model``, which makes one from a ``ModelConfig``."""

from __future__ import annotations

import torch
from torch import nn

from utils.seq2seq.config import ModelConfig
from utils.seq2seq.decoders import BahdanauDecoder, LuongDecoder, PlainDecoder
from utils.seq2seq.encoder import Memory, Seq2SeqEncoder
from utils.seq2seq.transformer import TransformerDecoder, TransformerEncoder
from utils.validate import require_int


class Seq2Seq(nn.Module):
    """An encoder, a decoder, and the teacher-forced forward pass that training uses.

    The encoder is an LSTM (``Seq2SeqEncoder``) or a ``TransformerEncoder``; the decoder one of
    ``utils.seq2seq.decoders`` or a ``TransformerDecoder`` (``ModelConfig.decoder`` chooses).

    ``forward(src (batch, src_steps), src_valid_lens (batch,), tgt_in (batch, tgt_steps))
    -> (logits (batch, tgt_steps, tgt_vocab), attention weights (batch, tgt_steps, src_steps)
    or None for the plain decoder)``. For decoding: ``memory = model.encode(src, src_valid_lens)``,
    ``state = model.decoder.init_state(memory)``, then ``model.decoder.step(tokens, state, memory)``.

    Built in chapter 06 §5; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, encoder: Seq2SeqEncoder, decoder: nn.Module, config: ModelConfig | None = None):
        super().__init__()
        self.encoder, self.decoder, self.config = encoder, decoder, config

    def encode(self, src: torch.Tensor, src_valid_lens: torch.Tensor) -> Memory:
        return self.encoder(src, src_valid_lens)

    def forward(self, src: torch.Tensor, src_valid_lens: torch.Tensor, tgt_in: torch.Tensor):
        memory = self.encode(src, src_valid_lens)  # the encoder checks src and its lengths
        if not torch.is_tensor(tgt_in) or tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            got = tuple(tgt_in.shape) if torch.is_tensor(tgt_in) else type(tgt_in).__name__
            raise ValueError(
                f"tgt_in must have shape (batch, tgt_steps) with batch = {src.shape[0]} (from src); "
                f"got {got}"
            )
        logits, _, weights = self.decoder(tgt_in, self.decoder.init_state(memory), memory)
        return logits, weights


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0) -> Seq2Seq:
    """A freshly initialised (PyTorch defaults) ``Seq2Seq`` as ``config`` describes it.

    Used in chapter 07 §4; tested in tests/test_seq2seq_model.py.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig; got {type(config).__name__}")
    for name, size in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size)):
        require_int(name, size, at_least=pad_id + 1)  # the vocabulary holds <pad>, and more
    if config.decoder == "transformer":
        sizes = (config.num_hiddens, config.num_heads, config.ffn_size, config.num_layers, config.dropout, pad_id)
        return Seq2Seq(TransformerEncoder(src_vocab_size, *sizes, norm_first=config.norm_first),
                       TransformerDecoder(tgt_vocab_size, *sizes, norm_first=config.norm_first), config)
    encoder = Seq2SeqEncoder(src_vocab_size, config.embed_size, config.num_hiddens, config.num_layers,
                             config.dropout, config.bidirectional, pad_id,
                             project_outputs=config.decoder != "plain")
    args = (tgt_vocab_size, config.embed_size, config.num_hiddens, config.num_layers, config.dropout, pad_id)
    if config.decoder == "plain":
        decoder = PlainDecoder(*args)
    elif config.decoder == "bahdanau":
        decoder = BahdanauDecoder(*args)
    elif config.decoder == "luong":
        decoder = LuongDecoder(*args, score=config.attention)
    else:  # ModelConfig checks this too, but a config can be mutated after creation
        raise ValueError(f"config.decoder must be 'plain', 'bahdanau', 'luong' or 'transformer'; "
                         f"got {config.decoder!r}")
    return Seq2Seq(encoder, decoder, config)
