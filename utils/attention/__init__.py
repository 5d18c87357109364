"""Attention layers, from the masked softmax up. Shapes are in each docstring."""

from utils.attention.additive import AdditiveAttention
from utils.attention.dot_product import DotProductAttention
from utils.attention.gated import GatedSelfAttention, gated_mix
from utils.attention.luong import LuongAttention
from utils.attention.masking import length_mask, masked_softmax
from utils.attention.multihead import MultiHeadAttention, causal_mask, merge_heads, split_heads
from utils.attention.per_step import PerStepAttention
from utils.attention.pooling import AttentionPooling
from utils.attention.positional import PositionalEncoding, sinusoidal_positions
from utils.attention.transformer import (
    LayerCache,
    PositionWiseFFN,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)

__all__ = [
    "AdditiveAttention",
    "AttentionPooling",
    "DotProductAttention",
    "GatedSelfAttention",
    "LayerCache",
    "LuongAttention",
    "MultiHeadAttention",
    "PerStepAttention",
    "PositionWiseFFN",
    "PositionalEncoding",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "causal_mask",
    "gated_mix",
    "length_mask",
    "masked_softmax",
    "merge_heads",
    "sinusoidal_positions",
    "split_heads",
]
