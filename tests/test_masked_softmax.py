"""utils.attention.masked_softmax against a plain per-row reference, and its errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.attention import length_mask, masked_softmax


def reference_masked_softmax(scores: torch.Tensor, valid_lens: torch.Tensor | None) -> torch.Tensor:
    """Row by row, in float64, with no masking tricks: softmax over the first `length` keys."""
    batch, queries, keys = scores.shape
    out = torch.zeros(batch, queries, keys, dtype=torch.float64)
    for b in range(batch):
        for q in range(queries):
            if valid_lens is None:
                length = keys
            elif valid_lens.dim() == 1:
                length = int(valid_lens[b])
            else:
                length = int(valid_lens[b, q])
            if length > 0:
                out[b, q, :length] = torch.softmax(scores[b, q, :length].double(), dim=0)
    return out


@st.composite
def scores_and_lengths(draw):
    batch = draw(st.integers(1, 4))
    queries = draw(st.integers(1, 4))
    keys = draw(st.integers(1, 6))
    scale = draw(st.sampled_from([1.0, 30.0, 1e4]))
    seed = draw(st.integers(0, 2**16))
    scores = torch.randn(batch, queries, keys, generator=torch.Generator().manual_seed(seed)) * scale
    kind = draw(st.sampled_from(["none", "1d", "2d"]))
    if kind == "none":
        return scores, None
    shape = (batch,) if kind == "1d" else (batch, queries)
    lengths = draw(st.lists(st.integers(0, keys), min_size=len(torch.empty(shape).flatten()),
                            max_size=len(torch.empty(shape).flatten())))
    return scores, torch.tensor(lengths, dtype=torch.long).reshape(shape)


@settings(max_examples=200, deadline=None)
@given(scores_and_lengths())
def test_matches_the_plain_reference(case):
    scores, valid_lens = case
    before = scores.clone()
    weights = masked_softmax(scores, valid_lens)
    assert weights.shape == scores.shape
    assert not torch.isnan(weights).any()
    torch.testing.assert_close(weights.double(), reference_masked_softmax(scores, valid_lens),
                               atol=1e-6, rtol=1e-5)
    assert torch.equal(scores, before), "masked_softmax modified its input"


@settings(max_examples=100, deadline=None)
@given(scores_and_lengths())
def test_rows_sum_to_one_or_zero_and_padding_gets_nothing(case):
    scores, valid_lens = case
    weights = masked_softmax(scores, valid_lens)
    if valid_lens is None:
        torch.testing.assert_close(weights.sum(-1), torch.ones(scores.shape[:-1]))
        return
    lengths = valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(scores.shape[:-1])
    keep = length_mask(lengths, scores.shape[-1])
    assert (weights[~keep] == 0).all()
    expected_sums = (lengths > 0).to(weights.dtype)
    torch.testing.assert_close(weights.sum(-1), expected_sums)


def test_fully_masked_rows_are_zero_with_finite_gradients():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    weights = masked_softmax(scores, torch.tensor([0, 2]))
    assert (weights[0] == 0).all()
    (weights * torch.randn(2, 3, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[0] == 0).all()


def test_heads_axis_broadcasts_the_lengths():
    scores = torch.randn(2, 5, 3, 4)  # (batch, heads, queries, keys)
    lengths_2d = torch.tensor([[1, 2, 3], [4, 0, 1]])
    weights = masked_softmax(scores, lengths_2d)
    for head in range(5):
        torch.testing.assert_close(weights[:, head], masked_softmax(scores[:, head], lengths_2d))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    scores = torch.randn(3, 2, 5)
    lengths = torch.tensor([0, 3, 5])
    weights = masked_softmax(scores.to(dtype), lengths)
    assert weights.dtype == dtype
    assert not torch.isnan(weights).any()
    torch.testing.assert_close(weights.float(), masked_softmax(scores, lengths), atol=1e-2, rtol=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    scores = torch.randn(3, 2, 5)
    lengths = torch.tensor([0, 3, 5])
    on_gpu = masked_softmax(scores.cuda(), lengths.cuda())
    torch.testing.assert_close(on_gpu.cpu(), masked_softmax(scores, lengths))
    # lengths on the CPU with scores on the GPU work too
    torch.testing.assert_close(masked_softmax(scores.cuda(), lengths).cpu(), masked_softmax(scores, lengths))


def test_agrees_with_d2l_where_every_length_is_positive():
    from d2l import torch as d2l

    scores = torch.randn(2, 3, 4)
    for lengths in (torch.tensor([2, 3]), torch.tensor([[1, 3, 2], [2, 4, 1]])):
        torch.testing.assert_close(masked_softmax(scores, lengths), d2l.masked_softmax(scores.clone(), lengths))


def test_d2l_differs_on_an_empty_sequence():
    from d2l import torch as d2l

    scores = torch.randn(1, 2, 4)
    ours = masked_softmax(scores, torch.tensor([0]))
    theirs = d2l.masked_softmax(scores.clone(), torch.tensor([0]))
    assert (ours == 0).all()
    torch.testing.assert_close(theirs, torch.full_like(theirs, 0.25))  # uniform over padding


@pytest.mark.parametrize(
    ("scores", "valid_lens", "message"),
    [
        (torch.randn(2, 3, 4), torch.tensor([1, 2, 3]), r"valid_lens must have shape \(batch,\) = \(2,\) for scores of shape \(2, 3, 4\); got shape \(3,\)"),
        (torch.randn(2, 3, 4), torch.tensor([[1, 2], [3, 4]]), r"valid_lens must have shape \(batch, queries\) = \(2, 3\) .*got shape \(2, 2\)"),
        (torch.randn(2, 3, 4), torch.tensor([[[1]]]), r"valid_lens must have shape"),
        (torch.randn(2, 3, 4), torch.tensor([1, -1]), r"valid_lens must be in \[0, keys = 4\]; got values from -1 to 1"),
        (torch.randn(2, 3, 4), torch.tensor([1, 5]), r"valid_lens must be in \[0, keys = 4\]; got values from 1 to 5"),
        (torch.randn(4), torch.tensor([1]), r"scores must have shape"),
    ],
)
def test_bad_shapes_and_lengths_name_the_argument(scores, valid_lens, message):
    with pytest.raises(ValueError, match=message):
        masked_softmax(scores, valid_lens)


def test_bad_types_name_the_argument():
    with pytest.raises(TypeError, match="valid_lens must hold integers"):
        masked_softmax(torch.randn(2, 3, 4), torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="scores must be floating point"):
        masked_softmax(torch.ones(2, 3, 4, dtype=torch.long), torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="valid_lens must be a torch.Tensor"):
        masked_softmax(torch.randn(2, 3, 4), [1, 2])


def test_a_keep_mask_combines_with_lengths_and_never_gives_nan():
    """A causal keep-mask and valid lengths together: each query sees keys <= itself and < its length."""
    scores = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (queries, keys), broadcast over the batch
    valid_lens = torch.tensor([4, 0])  # the second sequence has nothing to see
    weights = masked_softmax(scores, valid_lens, keep=causal)
    expected = masked_softmax(scores, torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0]]))  # the same, as lengths
    torch.testing.assert_close(weights, expected)
    weights.sum().backward()
    assert torch.isfinite(scores.grad).all() and weights[1].abs().sum() == 0


def test_bad_keep_masks_name_the_argument():
    scores = torch.zeros(2, 3, 4)
    with pytest.raises(TypeError, match="keep must be a bool torch.Tensor"):
        masked_softmax(scores, keep=torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"keep of shape \(3, 5\) does not broadcast to the scores' shape \(2, 3, 4\)"):
        masked_softmax(scores, keep=torch.ones(3, 5, dtype=torch.bool))
