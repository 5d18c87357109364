"""Cross-entropy over the valid target tokens only: padding never counts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from utils.validate import require_number


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, valid_lens: torch.Tensor,
                         label_smoothing: float = 0.0):
    """Mean cross-entropy over the first ``valid_lens[i]`` steps of each row, and their count.

    Args:
        logits: ``(batch, steps, vocab)`` (any float dtype; the loss is computed in float32).
        targets: ``(batch, steps)`` int64 ids.
        valid_lens: ``(batch,)`` how many steps of each row count (``tgt_valid_lens``).
        label_smoothing: in ``[0, 1)``; the target distribution puts ``1 - label_smoothing`` on
            the reference token and spreads the rest evenly over the vocabulary (Szegedy et al.
            2016), so the model is not pushed to certainty on one of several good translations.

    Returns:
        ``(loss_mean, num_tokens)``: a 0-d float32 tensor (0 when nothing counts) and a 0-d
        int64 tensor. Positions at or beyond ``valid_lens`` never reach the loss, whatever their
        logits or targets; equal to ``F.cross_entropy(..., ignore_index=pad)`` when padding is
        exactly the positions past ``valid_lens``. No host-device synchronisation.

    Built in chapter 06 §5; tested in tests/test_seq2seq_loss.py.
    """
    if not torch.is_tensor(logits) or logits.dim() != 3 or not logits.is_floating_point():
        got = f"shape {tuple(logits.shape)}, dtype {logits.dtype}" if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(f"logits must be a float tensor of shape (batch, steps, vocab); got {got}")
    if not torch.is_tensor(targets) or tuple(targets.shape) != tuple(logits.shape[:2]):
        got = tuple(targets.shape) if torch.is_tensor(targets) else type(targets).__name__
        raise ValueError(f"targets must have shape (batch, steps) = {tuple(logits.shape[:2])}; got {got}")
    if not torch.is_tensor(valid_lens) or tuple(valid_lens.shape) != (logits.shape[0],):
        got = tuple(valid_lens.shape) if torch.is_tensor(valid_lens) else type(valid_lens).__name__
        raise ValueError(f"valid_lens must have shape (batch,) = ({logits.shape[0]},); got {got}")
    require_number("label_smoothing", label_smoothing, at_least=0, below=1)
    steps = logits.shape[1]
    keep = torch.arange(steps, device=logits.device) < valid_lens.to(logits.device)[:, None]  # (batch, steps)
    # ignore_index drops the padded positions inside the kernel: their logits are never read into
    # the sum, and no boolean indexing means no synchronisation with the GPU
    masked_targets = targets.masked_fill(~keep, -100)
    total = F.cross_entropy(logits.float().flatten(0, 1), masked_targets.flatten(),
                            ignore_index=-100, reduction="sum", label_smoothing=label_smoothing)
    num_tokens = keep.sum()
    return total / num_tokens.clamp(min=1), num_tokens
