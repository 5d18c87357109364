"""utils.attention.AdditiveAttention against d2l (same weights) and a per-pair loop; its errors."""

from __future__ import annotations

import pytest
import torch
from d2l import torch as d2l

from utils.attention import AdditiveAttention, masked_softmax

TOLERANCE = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
MASKS = {
    "none": None,
    "1d": torch.tensor([2, 5]),
    "2d": torch.tensor([[1, 2, 3], [5, 4, 1]]),
}


def make_inputs(dtype=torch.float32, seed=0, batch=2, queries=3, keys=5, query_size=7, key_size=4, v=6):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=generator).to(dtype)
                 for shape in ((batch, queries, query_size), (batch, keys, key_size), (batch, keys, v)))


def make_pair(dtype, num_hiddens=8):
    """Ours and d2l's (LazyLinear, materialised by a first forward pass) with the same weights."""
    torch.manual_seed(0)
    ours = AdditiveAttention(key_size=4, query_size=7, num_hiddens=num_hiddens, dropout=0.5).eval()
    theirs = d2l.AdditiveAttention(num_hiddens, dropout=0.5).eval()
    theirs(*make_inputs(), None)
    theirs.load_state_dict(ours.state_dict())
    return ours.to(dtype), theirs.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("mask", list(MASKS))
def test_equals_d2l_with_the_same_weights(dtype, mask):
    ours, theirs = make_pair(dtype)
    queries, keys, values = make_inputs(dtype, seed=1)
    valid_lens = MASKS[mask]
    output = ours(queries, keys, values, valid_lens)
    assert output.shape == (2, 3, 6) and output.dtype == dtype
    torch.testing.assert_close(output, theirs(queries, keys, values, valid_lens), **TOLERANCE[dtype])
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights, **TOLERANCE[dtype])


@pytest.mark.parametrize("mask", list(MASKS))
def test_equals_a_loop_over_every_query_key_pair(mask):
    ours, _ = make_pair(torch.float32)
    queries, keys, values = make_inputs(seed=2)
    scores = torch.empty(2, 3, 5)
    with torch.no_grad():
        for b in range(2):
            for i in range(3):
                for j in range(5):
                    hidden = torch.tanh(ours.W_q.weight @ queries[b, i] + ours.W_k.weight @ keys[b, j])
                    scores[b, i, j] = ours.w_v.weight[0] @ hidden
        expected = masked_softmax(scores, MASKS[mask]) @ values
        torch.testing.assert_close(ours(queries, keys, values, MASKS[mask]), expected)


def test_fully_masked_rows_give_zeros():
    ours, _ = make_pair(torch.float32)
    queries, keys, values = make_inputs(seed=3)
    output = ours(queries, keys, values, torch.tensor([[0, 2, 0], [5, 0, 1]]))
    assert (output[0, 0] == 0).all() and (output[0, 2] == 0).all() and (output[1, 1] == 0).all()
    assert not torch.isnan(output).any()


def test_extra_leading_axes_are_heads():
    torch.manual_seed(0)
    attention = AdditiveAttention(key_size=4, query_size=4, num_hiddens=8)
    generator = torch.Generator().manual_seed(4)
    queries, keys, values = (torch.randn(2, 3, n, 4, generator=generator) for n in (5, 6, 6))
    output = attention(queries, keys, values, torch.tensor([3, 6]))
    assert output.shape == (2, 3, 5, 4)
    torch.testing.assert_close(output[:, 1], attention(queries[:, 1], keys[:, 1], values[:, 1],
                                                       torch.tensor([3, 6])))


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 3, 5), (2, 5, 4), (2, 5, 6)), r"queries of shape \(2, 3, 5\) must have query_size=7"),
        (((2, 3, 7), (2, 5, 3), (2, 5, 6)), r"keys of shape \(2, 5, 3\) must have key_size=4"),
        (((2, 3, 7), (2, 5, 4), (2, 4, 6)), r"one value per key.*values has shape \(2, 4, 6\)"),
        (((2, 3, 7), (1, 5, 4), (1, 5, 6)), r"leading"),
    ],
)
def test_mismatched_shapes_name_the_argument(shapes, message):
    attention = AdditiveAttention(key_size=4, query_size=7, num_hiddens=8)
    with pytest.raises(ValueError, match=message):
        attention(*(torch.randn(*shape) for shape in shapes))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_hiddens must be an int >= 1; got 0"):
        AdditiveAttention(4, 4, 0)
    with pytest.raises(ValueError, match="dropout"):
        AdditiveAttention(4, 4, 8, dropout=-0.1)
