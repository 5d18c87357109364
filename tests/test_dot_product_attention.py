"""utils.attention.DotProductAttention against torch SDPA and d2l, both of its paths, its errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from d2l import torch as d2l

from utils.attention import DotProductAttention, length_mask

TOLERANCE = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
MASKS = {
    "none": None,
    "1d": torch.tensor([2, 5, 1]),
    "2d": torch.tensor([[1, 2, 3, 4], [5, 5, 1, 3], [2, 2, 2, 2]]),
}


def make_qkv(dtype=torch.float32, batch=3, queries=4, keys=5, d=8, v=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=generator).to(dtype)
                 for shape in ((batch, queries, d), (batch, keys, d), (batch, keys, v)))


def sdpa_reference(queries, keys, values, valid_lens):
    mask = None
    if valid_lens is not None:
        lengths = valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(queries.shape[:-1])
        mask = length_mask(lengths, keys.shape[-2])
    return F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
def test_equals_torch_sdpa(dtype, mask, need_weights):
    queries, keys, values = make_qkv(dtype)
    attention = DotProductAttention(dropout=0.5, need_weights=need_weights).eval()
    output = attention(queries, keys, values, MASKS[mask])
    assert output.shape == (3, 4, 6) and output.dtype == dtype
    torch.testing.assert_close(output, sdpa_reference(queries, keys, values, MASKS[mask]), **TOLERANCE[dtype])
    assert (attention.attention_weights is not None) == need_weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("mask", list(MASKS))
def test_equals_d2l(dtype, mask):
    queries, keys, values = make_qkv(dtype, seed=1)
    valid_lens = MASKS[mask]
    ours = DotProductAttention(dropout=0.5).eval()
    theirs = d2l.DotProductAttention(dropout=0.5).eval()
    torch.testing.assert_close(ours(queries, keys, values, valid_lens),
                               theirs(queries, keys, values, valid_lens), **TOLERANCE[dtype])
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights, **TOLERANCE[dtype])


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
@pytest.mark.parametrize("valid_lens", [torch.tensor([0, 3, 5]), torch.tensor([[0, 1, 0, 5]] * 3)],
                         ids=["1d", "2d"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(need_weights, valid_lens):
    queries, keys, values = (tensor.requires_grad_() for tensor in make_qkv())
    output = DotProductAttention(need_weights=need_weights)(queries, keys, values, valid_lens)
    empty = (valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(3, 4)) == 0
    assert torch.equal(output[empty], torch.zeros_like(output[empty]))
    assert not torch.isnan(output).any()
    output.sum().backward()
    for tensor in (queries, keys, values):
        assert torch.isfinite(tensor.grad).all()


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
def test_extra_leading_axes_are_heads(need_weights):
    generator = torch.Generator().manual_seed(2)
    queries, keys, values = (torch.randn(2, 3, n, 4, generator=generator) for n in (5, 6, 6))
    valid_lens = torch.tensor([2, 6])
    output = DotProductAttention(need_weights=need_weights)(queries, keys, values, valid_lens)
    for head in range(3):
        alone = DotProductAttention()(queries[:, head], keys[:, head], values[:, head], valid_lens)
        torch.testing.assert_close(output[:, head], alone)


def test_need_weights_argument_overrides_the_constructor():
    attention = DotProductAttention(need_weights=True)
    queries, keys, values = make_qkv()
    attention(queries, keys, values, need_weights=False)
    assert attention.attention_weights is None
    attention(queries, keys, values)
    assert attention.attention_weights.shape == (3, 4, 5)
    torch.testing.assert_close(attention.attention_weights.sum(-1), torch.ones(3, 4))


def test_dropout_acts_only_in_training_on_both_paths():
    queries, keys, values = make_qkv()
    for need_weights in (True, False):
        attention = DotProductAttention(dropout=0.5, need_weights=need_weights)
        torch.manual_seed(0)
        trained = attention.train()(queries, keys, values)
        assert not torch.allclose(trained, attention.eval()(queries, keys, values))


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((3, 4, 8), (3, 5, 7), (3, 5, 6)), r"same last axis.*queries \(3, 4, 8\) and keys \(3, 5, 7\)"),
        (((3, 4, 8), (3, 5, 8), (3, 6, 6)), r"one value per key.*values has shape \(3, 6, 6\)"),
        (((3, 4, 8), (2, 5, 8), (2, 5, 6)), r"leading.*queries \(3, 4, 8\), keys \(2, 5, 8\)"),
        (((4, 8), (5, 8), (5, 6)), r"queries must have shape.*\(4, 8\)"),
    ],
)
def test_mismatched_shapes_name_the_argument(shapes, message):
    tensors = [torch.randn(*shape) for shape in shapes]
    with pytest.raises(ValueError, match=message):
        DotProductAttention()(*tensors)


def test_bad_valid_lens_and_types_are_explained():
    queries, keys, values = make_qkv()
    with pytest.raises(ValueError, match=r"valid_lens must have shape .*got shape \(2,\)"):
        DotProductAttention(need_weights=False)(queries, keys, values, torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="keys must be floating point"):
        DotProductAttention()(queries, keys.long(), values)
    with pytest.raises(ValueError, match="dropout"):
        DotProductAttention(dropout=1.5)
