"""The attention translator: encoder, three decoders, the model, its loss, and decoding.

- ``ModelConfig``, ``build_model``, ``Seq2Seq`` (``config``, ``model``)
- ``Seq2SeqEncoder``, ``Memory`` (``encoder``)
- ``PlainDecoder``, ``BahdanauDecoder``, ``LuongDecoder`` (``decoders``)
- ``TransformerEncoder``, ``TransformerDecoder``, ``TransformerState`` (``transformer``, chapter 08)
- ``masked_cross_entropy`` (``loss``)
- ``decode``, ``greedy_decode``, ``beam_search``, ``default_max_len``, ``length_normalizer`` (``decoding``)
- ``translate``, ``Translation``, ``detokenize``, ``head_alignments`` (``translate``)

Standard library, torch and numpy only (DESIGN §4).
"""

from utils.seq2seq.config import DECODERS, ModelConfig
from utils.seq2seq.decoders import BahdanauDecoder, Decoder, LuongDecoder, PlainDecoder
from utils.seq2seq.decoding import (
    beam_search,
    decode,
    default_max_len,
    greedy_decode,
    length_normalizer,
)
from utils.seq2seq.encoder import Memory, Seq2SeqEncoder
from utils.seq2seq.loss import masked_cross_entropy
from utils.seq2seq.model import Seq2Seq, build_model
from utils.seq2seq.transformer import TransformerDecoder, TransformerEncoder, TransformerState
from utils.seq2seq.translate import Translation, detokenize, head_alignments, translate

__all__ = [
    "DECODERS",
    "BahdanauDecoder",
    "Decoder",
    "LuongDecoder",
    "Memory",
    "ModelConfig",
    "PlainDecoder",
    "Seq2Seq",
    "Seq2SeqEncoder",
    "Translation",
    "TransformerDecoder",
    "TransformerEncoder",
    "TransformerState",
    "beam_search",
    "decode",
    "default_max_len",
    "build_model",
    "detokenize",
    "greedy_decode",
    "head_alignments",
    "length_normalizer",
    "masked_cross_entropy",
    "translate",
]
