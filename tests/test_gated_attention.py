"""utils.attention.GatedSelfAttention: the gate's formula, its stored values, masks, and what it learns."""

from __future__ import annotations

import pytest
import torch

from utils.attention import GatedSelfAttention, MultiHeadAttention, gated_mix


def test_output_is_the_gated_mix_of_attention_and_input():
    torch.manual_seed(0)
    module = GatedSelfAttention(8, num_heads=2)
    x = torch.randn(3, 5, 8)
    y, weights = module(x)
    assert weights is None
    attended, _ = module.attention(x, x, x)
    gate = torch.sigmoid(x @ module.gate.weight.T + module.gate.bias)
    torch.testing.assert_close(y, gate * attended + (1 - gate) * x)
    torch.testing.assert_close(module.last_gate, gate)
    assert module.last_gate.shape == (3, 5, 8) and not module.last_gate.requires_grad


@pytest.mark.parametrize(("bias", "expected"), [(-30.0, "input"), (30.0, "attention")])
def test_a_closed_gate_keeps_the_input_and_an_open_gate_takes_the_attention(bias, expected):
    torch.manual_seed(1)
    module = GatedSelfAttention(8, num_heads=2)
    with torch.no_grad():
        module.gate.weight.zero_()
        module.gate.bias.fill_(bias)
    x = torch.randn(2, 4, 8)
    y, _ = module(x)
    target = x if expected == "input" else module.attention(x, x, x)[0]
    torch.testing.assert_close(y, target)


def test_masks_reach_the_attention():
    torch.manual_seed(2)
    module = GatedSelfAttention(8, num_heads=2)
    x = torch.randn(2, 5, 8)
    y, weights = module(x, valid_lens=torch.tensor([5, 2]), need_weights=True)
    assert weights.shape == (2, 5, 5) and (weights[1, :, 2:] == 0).all()
    # padding keys do not change the real positions' outputs
    x_changed = x.clone()
    x_changed[1, 2:] = torch.randn(3, 8)
    y_changed, _ = module(x_changed, valid_lens=torch.tensor([5, 2]))
    torch.testing.assert_close(y_changed[1, :2], y[1, :2])
    _, causal = module(x, is_causal=True, need_weights=True)
    assert (causal.triu(diagonal=1) == 0).all()


def test_gradients_reach_the_gate_and_the_attention():
    torch.manual_seed(3)
    module = GatedSelfAttention(8, num_heads=2)
    module(torch.randn(2, 5, 8))[0].square().sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_gated_mix_rejects_mismatched_shapes():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"attended must have the shape of x, \(2, 3, 4\); got \(2, 3, 5\)"):
        gated_mix(x, torch.randn(2, 3, 5), torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"gate_logits must have the shape of x"):
        gated_mix(x, torch.randn(2, 3, 4), torch.randn(3, 4))


def test_bad_sizes_are_reported_by_the_attention():
    with pytest.raises(ValueError, match="embed_dim=10 must be divisible by num_heads=4"):
        GatedSelfAttention(10, num_heads=4)
    with pytest.raises(ValueError, match=r"query must have shape \(batch, seq, embed_dim=8\)"):
        GatedSelfAttention(8)(torch.randn(2, 3, 6))
    assert isinstance(GatedSelfAttention(8).attention, MultiHeadAttention)


def test_the_gate_learns_where_context_helps():
    """Channels 0-3 must become the sequence mean (context), channels 4-7 the token itself."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    module = GatedSelfAttention(8, num_heads=1)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.03)
    for _ in range(120):
        x = torch.randn(64, 6, 8, generator=generator)
        target = x.clone()
        target[..., :4] = x[..., :4].mean(dim=1, keepdim=True)
        loss = torch.nn.functional.mse_loss(module(x)[0], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        module(torch.randn(256, 6, 8, generator=generator))
    gate = module.last_gate.mean(dim=(0, 1))
    assert (gate[:4] > 0.7).all(), gate
    assert (gate[4:] < 0.3).all(), gate
