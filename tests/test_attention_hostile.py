"""Attention never returns NaN where the course promises it: the default (explicit weights) and
the fused (SDPA) path of each layer agree on padding that holds inf or NaN, rows a float mask
forbids entirely, and float16 inputs whose dot products overflow."""

from __future__ import annotations

import pytest
import torch

from utils.attention import AdditiveAttention, DotProductAttention, MultiHeadAttention


def _randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _dot_both_paths(queries, keys, values, valid_lens):
    layer = DotProductAttention().eval()
    return (layer(queries, keys, values, valid_lens, need_weights=True),
            layer(queries, keys, values, valid_lens, need_weights=False))


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), -float("inf")])
def test_dot_product_ignores_whatever_the_padding_holds(poison):
    queries, keys, values = _randn(2, 3, 4, seed=1), _randn(2, 5, 4, seed=2), _randn(2, 5, 6, seed=3)
    valid_lens = torch.tensor([5, 2])
    clean = _dot_both_paths(queries, keys, values, valid_lens)[0]
    keys[1, 2:], values[1, 2:] = poison, poison  # padding of the second sequence
    default, fused = _dot_both_paths(queries, keys, values, valid_lens)
    torch.testing.assert_close(default, clean)
    torch.testing.assert_close(fused, clean)


def test_additive_ignores_nan_in_padded_values():
    layer = AdditiveAttention(4, 4, 8).eval()
    queries, keys, values = _randn(2, 3, 4, seed=1), _randn(2, 5, 4, seed=2), _randn(2, 5, 6, seed=3)
    valid_lens = torch.tensor([[5, 5, 5], [2, 1, 0]])  # per query: the last sees nothing
    clean = layer(queries, keys, values, valid_lens)
    keys[1, 2:], values[1, 2:] = float("nan"), float("nan")
    torch.testing.assert_close(layer(queries, keys, values, valid_lens), clean)
    assert layer(queries, keys, values, valid_lens)[1, 2].abs().sum() == 0


def test_dot_product_float16_does_not_overflow_to_nan():
    queries, keys, values = (_randn(2, 3, 64, seed=s, scale=100.0).half() for s in (1, 2, 3))
    default, fused = _dot_both_paths(queries, keys, values, torch.tensor([3, 2]))
    assert torch.isfinite(default).all() and torch.isfinite(fused).all()
    reference, _ = _dot_both_paths(queries.float(), keys.float(), values.float(), torch.tensor([3, 2]))
    torch.testing.assert_close(default.float(), reference, atol=0.5, rtol=0.01)
    torch.testing.assert_close(fused.float(), reference, atol=0.5, rtol=0.01)


def _mha_both_paths(layer, x, **masks):
    out_default, _ = layer(x, x, x, need_weights=True, **masks)
    out_fused, _ = layer(x, x, x, need_weights=False, **masks)
    return out_default, out_fused


@pytest.mark.parametrize("dtype, forbid", [(torch.float32, float("-inf")), (torch.float16, -1e9)])
def test_mha_float_mask_forbidding_a_whole_row_gives_zeros_on_both_paths(dtype, forbid):
    torch.manual_seed(0)
    layer = MultiHeadAttention(8, 2).eval().to(dtype)
    x = _randn(2, 4, 8, seed=4).to(dtype).requires_grad_()
    attn_mask = torch.zeros(4, 4)
    attn_mask[1] = forbid  # query 1 may see no key at all
    default, fused = _mha_both_paths(layer, x, attn_mask=attn_mask.to(dtype))
    for output in (default, fused):
        assert torch.isfinite(output).all()
        expected = layer.out_proj.bias.expand(2, 8)  # zero attention output, then the projection's bias
        torch.testing.assert_close(output[:, 1], expected)
    torch.testing.assert_close(default, fused, atol=2e-3 if dtype == torch.float16 else 1e-5, rtol=1e-3)
    (default.float().sum() + fused.float().sum()).backward()
    assert torch.isfinite(x.grad).all()


def test_mha_ignores_nan_in_padded_keys_and_values_on_both_paths():
    torch.manual_seed(0)
    layer = MultiHeadAttention(8, 2).eval()
    x = _randn(2, 5, 8, seed=5)
    valid_lens = torch.tensor([5, 3])
    clean = _mha_both_paths(layer, x, valid_lens=valid_lens)[0]
    x[1, 3:] = float("nan")  # the padding of sequence 1, as keys and values (and queries)
    default, fused = _mha_both_paths(layer, x, valid_lens=valid_lens)
    for output in (default, fused):
        torch.testing.assert_close(output[:, :3], clean[:, :3])  # every real query is untouched
        torch.testing.assert_close(output[0], clean[0])
