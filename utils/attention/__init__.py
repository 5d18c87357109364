"""Attention layers, from the masked softmax up. Shapes are in each docstring."""

from utils.attention.masking import length_mask, masked_softmax

__all__ = ["length_mask", "masked_softmax"]
