"""Attention layers, from the masked softmax up. Shapes are in each docstring."""

from utils.attention.additive import AdditiveAttention
from utils.attention.dot_product import DotProductAttention
from utils.attention.gated import GatedSelfAttention, gated_mix
from utils.attention.luong import LuongAttention
from utils.attention.masking import length_mask, masked_softmax
from utils.attention.multihead import MultiHeadAttention, causal_mask, merge_heads, split_heads
from utils.attention.per_step import PerStepAttention
from utils.attention.pooling import AttentionPooling

__all__ = [
    "AdditiveAttention",
    "AttentionPooling",
    "DotProductAttention",
    "GatedSelfAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "PerStepAttention",
    "causal_mask",
    "gated_mix",
    "length_mask",
    "masked_softmax",
    "merge_heads",
    "split_heads",
]
