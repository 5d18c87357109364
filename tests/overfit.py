"""Training a tiny translator on one batch until it knows it by heart (the decoding tests' fixture)."""

from __future__ import annotations

import torch

from utils.seq2seq import masked_cross_entropy


def overfit_batch(model, batch, *, max_steps: int, lr: float = 1e-2) -> list[float]:
    """Adam on one batch until the masked cross-entropy is below 0.01 (or ``max_steps``); the losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(max_steps):
        logits, _ = model(batch.src, batch.src_valid_lens, batch.tgt_in)
        loss, _ = masked_cross_entropy(logits, batch.tgt_out, batch.tgt_valid_lens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if loss.item() < 0.01:
            break
    return losses
