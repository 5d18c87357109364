"""utils.attention.MultiHeadAttention against nn.MultiheadAttention, the head split, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.attention import (
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
    merge_heads,
    split_heads,
)

EMBED, HEADS = 12, 3


def pair(seed: int = 0, bias: bool = True, embed: int = EMBED, heads: int = HEADS):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(embed, heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():  # torch initialises biases to 0: make them count
        if bias:
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    return ours, theirs


def inputs(batch=2, queries=5, keys=7, seed=1, embed=EMBED):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, queries, embed, generator=generator)
    key = torch.randn(batch, keys, embed, generator=generator)
    value = torch.randn(batch, keys, embed, generator=generator)
    return query, key, value


def padding(batch_lengths, keys):
    """(batch, keys) bool, True = padding (torch's convention)."""
    return torch.arange(keys) >= torch.tensor(batch_lengths)[:, None]


def close(got, expected):
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# -- equality with torch ------------------------------------------------------------------
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_torch_without_masks(need_weights, bias):
    ours, theirs = pair(bias=bias)
    query, key, value = inputs()
    out, weights = ours(query, key, value, need_weights=need_weights)
    expected, expected_weights = theirs(query, key, value, need_weights=need_weights)
    close(out, expected)
    if need_weights:
        close(weights, expected_weights)
    else:
        assert weights is None and expected_weights is None


@pytest.mark.parametrize("need_weights", [True, False])
def test_equals_torch_with_key_padding_mask(need_weights):
    ours, theirs = pair(seed=2)
    query, key, value = inputs(batch=3, keys=6)
    mask = padding([6, 2, 4], 6)
    out, weights = ours(query, key, value, key_padding_mask=mask, need_weights=need_weights)
    expected, expected_weights = theirs(query, key, value, key_padding_mask=mask, need_weights=need_weights)
    close(out, expected)
    if need_weights:
        close(weights, expected_weights)
        assert (weights[1, :, 2:] == 0).all()


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [False, True])
def test_equals_torch_with_a_causal_mask(need_weights, with_padding):
    ours, theirs = pair(seed=3)
    x, _, _ = inputs(batch=3, queries=6, keys=6)
    mask = causal_mask(6)
    kpm = padding([6, 3, 5], 6) if with_padding else None
    expected, expected_weights = theirs(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=need_weights)
    for kwargs in ({"attn_mask": mask}, {"is_causal": True}):  # an explicit mask, or ours built from the flag
        out, weights = ours(x, x, x, key_padding_mask=kpm, need_weights=need_weights, **kwargs)
        close(out, expected)
        if need_weights:
            close(weights, expected_weights)
            assert (weights.triu(diagonal=1) == 0).all()


def test_per_head_weights_equal_torch():
    ours, theirs = pair(seed=4)
    query, key, value = inputs()
    mask = padding([7, 3], 7)
    _, weights = ours(query, key, value, key_padding_mask=mask, average_attn_weights=False)
    _, expected = theirs(query, key, value, key_padding_mask=mask, average_attn_weights=False)
    assert weights.shape == (2, HEADS, 5, 7)
    close(weights, expected)


def test_float_and_per_head_attn_masks_equal_torch():
    ours, theirs = pair(seed=5)
    query, key, value = inputs()
    generator = torch.Generator().manual_seed(9)
    float_mask = torch.randn(5, 7, generator=generator)
    per_head = torch.rand(2 * HEADS, 5, 7, generator=generator) > 0.7
    per_head[..., 0] = False  # every query keeps a key, so torch has no NaN rows
    for mask in (float_mask, per_head):
        for need_weights in (True, False):
            out, _ = ours(query, key, value, attn_mask=mask, need_weights=need_weights)
            expected, _ = theirs(query, key, value, attn_mask=mask, need_weights=need_weights)
            close(out, expected)
    # (batch, heads, queries, keys) means the same as torch's (batch * heads, queries, keys)
    out, _ = ours(query, key, value, attn_mask=per_head.reshape(2, HEADS, 5, 7))
    close(out, theirs(query, key, value, attn_mask=per_head)[0])


def test_gradients_equal_torch():
    ours, theirs = pair(seed=6)
    query, key, value = inputs()
    mask = padding([7, 4], 7)
    ours(query, key, value, key_padding_mask=mask, need_weights=False)[0].square().sum().backward()
    theirs.train()  # the training path of torch (the eval fast path has no autograd)
    theirs(query, key, value, key_padding_mask=mask)[0].square().sum().backward()
    q_grad, k_grad, v_grad = theirs.in_proj_weight.grad.chunk(3)
    close(ours.q_proj.weight.grad, q_grad)
    close(ours.k_proj.weight.grad, k_grad)
    close(ours.v_proj.weight.grad, v_grad)
    close(ours.out_proj.weight.grad, theirs.out_proj.weight.grad)


# -- the two paths, valid_lens, dropout ---------------------------------------------------
def test_valid_lens_equal_key_padding_mask_on_both_paths():
    ours, _ = pair(seed=7)
    query, key, value = inputs(batch=3)
    lengths = torch.tensor([7, 2, 5])
    expected, expected_weights = ours(query, key, value, key_padding_mask=padding([7, 2, 5], 7))
    for need_weights in (True, False):
        out, weights = ours(query, key, value, valid_lens=lengths, need_weights=need_weights)
        close(out, expected)
    out, weights = ours(query, key, value, valid_lens=lengths)
    close(weights, expected_weights)


def test_2d_valid_lens_combine_with_a_causal_mask():
    ours, _ = pair(seed=8)
    x, _, _ = inputs(batch=2, queries=5, keys=5)
    lengths = torch.tensor([[1, 2, 3, 3, 3], [1, 1, 1, 1, 1]])  # per query
    out, weights = ours(x, x, x, valid_lens=lengths, is_causal=True, average_attn_weights=False)
    scores = (split_heads(ours.q_proj(x), HEADS) @ split_heads(ours.k_proj(x), HEADS).transpose(-2, -1)) / 2.0
    scores = scores.masked_fill(causal_mask(5), float("-inf"))
    close(weights, masked_softmax(scores, lengths))
    fused, _ = ours(x, x, x, valid_lens=lengths, is_causal=True, need_weights=False)
    close(fused, out)


def test_a_query_that_sees_nothing_gets_zeros_not_nan():
    ours, _ = pair(seed=9)
    query, key, value = inputs(batch=2)
    mask = padding([0, 7], 7)  # the first sequence is all padding
    for need_weights in (True, False):
        out, weights = ours(query, key, value, key_padding_mask=mask, need_weights=need_weights)
        assert torch.isfinite(out).all()
        # zero attention output, so the output is the out_proj bias
        close(out[0], ours.out_proj.bias.expand(5, EMBED))
        if need_weights:
            assert (weights[0] == 0).all()


def test_dropout_only_in_training_and_weights_rows_rescaled():
    torch.manual_seed(0)
    module = MultiHeadAttention(EMBED, HEADS, dropout=0.5)
    query, key, value = inputs()
    module.eval()
    first, _ = module(query, key, value)
    close(module(query, key, value)[0], first)
    module.train()
    _, weights = module(query, key, value, average_attn_weights=False)
    assert (weights == 0).any(), "dropout dropped nothing"
    assert (weights.sum(-1) - 1).abs().max() > 0.05, "kept weights are scaled by 1 / (1 - p)"


# -- the head split and permutation equivariance ------------------------------------------
def test_split_and_merge_heads_are_inverse_and_keep_positions():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[1, 2, 4], x[1, 4, 8:12])  # head 2 of position 4 = features 8..11
    torch.testing.assert_close(merge_heads(heads), x)


class WrongSplitAttention(MultiHeadAttention):
    """The bug from the wild: ``view(batch * heads, -1, head_dim)`` with no transpose."""

    def forward(self, query, key, value, **_):
        batch, seq, _ = query.shape

        def split(x):
            return x.reshape(batch * self.num_heads, -1, self.head_dim)

        q, k, v = split(self.q_proj(query)), split(self.k_proj(key)), split(self.v_proj(value))
        weights = torch.softmax(q @ k.transpose(1, 2) / self.head_dim**0.5, dim=-1)
        merged = (weights @ v).reshape(batch, seq, self.embed_dim)
        return self.out_proj(merged), None


def permutation_equivariance_error(module, x, seed=0):
    """max |f(x[perm]) - f(x)[perm]|: 0 for self-attention without positions or masks."""
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        permuted_first = module(x[:, perm], x[:, perm], x[:, perm])[0]
        permuted_after = module(x, x, x)[0][:, perm]
    return (permuted_first - permuted_after).abs().max().item()


def is_permutation_equivariant(module, x):
    return all(permutation_equivariance_error(module, x, seed) < 1e-5 for seed in range(3))


def test_equivariance_check_passes_for_ours_and_fails_for_the_wrong_split():
    ours, theirs = pair(seed=10)
    x, _, _ = inputs(batch=2, queries=6, keys=6)
    wrong = WrongSplitAttention(EMBED, HEADS).load_from_torch(theirs).eval()
    assert is_permutation_equivariant(ours, x)
    assert is_permutation_equivariant(theirs, x)
    assert not is_permutation_equivariant(wrong, x)
    # and the comparison with torch catches it as well
    assert (wrong(x, x, x)[0] - theirs(x, x, x)[0]).abs().max() > 1e-2
    close(ours(x, x, x)[0], theirs(x, x, x)[0])


def test_with_one_head_the_wrong_split_is_harmless():
    """With one head there is nothing to mix: the bug only shows with heads > 1."""
    ours, theirs = pair(seed=11, heads=1)
    x, _, _ = inputs(batch=2, queries=6, keys=6)
    wrong = WrongSplitAttention(EMBED, 1).load_from_torch(theirs).eval()
    close(wrong(x, x, x)[0], ours(x, x, x)[0])


# -- interoperability ---------------------------------------------------------------------
def test_load_from_torch_rejects_what_it_cannot_copy():
    module = MultiHeadAttention(EMBED, HEADS)
    with pytest.raises(ValueError, match="num_heads=4"):
        module.load_from_torch(nn.MultiheadAttention(EMBED, 4, batch_first=True))
    with pytest.raises(ValueError, match="kdim/vdim"):
        module.load_from_torch(nn.MultiheadAttention(EMBED, HEADS, kdim=5, batch_first=True))
    with pytest.raises(ValueError, match="bias"):
        module.load_from_torch(nn.MultiheadAttention(EMBED, HEADS, bias=False, batch_first=True))
    with pytest.raises(TypeError, match="mha must be an nn.MultiheadAttention"):
        module.load_from_torch(nn.Linear(EMBED, EMBED))


def test_from_torch_copies_sizes_and_dropout():
    theirs = nn.MultiheadAttention(EMBED, HEADS, dropout=0.25, bias=False, batch_first=True)
    ours = MultiHeadAttention.from_torch(theirs)
    assert (ours.embed_dim, ours.num_heads, ours.dropout, ours.q_proj.bias) == (EMBED, HEADS, 0.25, None)


# -- bad input ----------------------------------------------------------------------------
def test_embed_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"embed_dim=10 must be divisible by num_heads=3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"last axis of x \(10\) must be divisible by num_heads=3"):
        split_heads(torch.randn(2, 4, 10), 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key_padding_mask": torch.zeros(2, 5, dtype=torch.bool)}, ValueError,
         r"key_padding_mask of shape \(2, 5\) does not fit: expected \(batch, keys\) = \(2, 7\)"),
        ({"key_padding_mask": torch.zeros(7, dtype=torch.bool)}, ValueError, r"key_padding_mask of shape \(7,\)"),
        ({"key_padding_mask": torch.zeros(2, 7, dtype=torch.long)}, TypeError, r"key_padding_mask must be bool"),
        ({"attn_mask": torch.zeros(7, 5, dtype=torch.bool)}, ValueError,
         r"attn_mask of shape \(7, 5\) does not fit.*\(5, 7\)"),
        ({"attn_mask": torch.zeros(2, 5, 7, dtype=torch.bool)}, ValueError,
         r"attn_mask of shape \(2, 5, 7\).*\(6, 5, 7\)"),
        ({"attn_mask": [[True]]}, TypeError, r"attn_mask must be a torch.Tensor"),
        ({"valid_lens": torch.tensor([1, 2, 3])}, ValueError, r"valid_lens must have shape .*got shape \(3,\)"),
        ({"valid_lens": torch.tensor([1, 8])}, ValueError, r"valid_lens must be in \[0, keys = 7\]; got values from 1 to 8"),
    ],
)
def test_bad_masks_name_the_argument_and_the_expected_shape(kwargs, error, message):
    module = MultiHeadAttention(EMBED, HEADS)
    query, key, value = inputs()
    for need_weights in (True, False):
        with pytest.raises(error, match=message):
            module(query, key, value, need_weights=need_weights, **kwargs)


def test_bad_inputs_name_the_argument():
    module = MultiHeadAttention(EMBED, HEADS)
    query, key, value = inputs()
    with pytest.raises(ValueError, match=r"key must have shape \(batch, seq, embed_dim=12\); got shape \(2, 7, 8\)"):
        module(query, key[..., :8], value)
    with pytest.raises(ValueError, match=r"query must have shape .* got shape \(5, 12\)"):
        module(query[0], key, value)
    with pytest.raises(ValueError, match="key and value must have the same number of positions"):
        module(query, key, value[:, :3])
    with pytest.raises(ValueError, match="share the batch size"):
        module(query[:1], key, value)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        MultiHeadAttention(EMBED, HEADS, dropout=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_fused_path_matches_cpu():
    ours, theirs = pair(seed=12)
    query, key, value = inputs(batch=3)
    mask = padding([7, 0, 4], 7)
    expected, _ = ours(query, key, value, key_padding_mask=mask)
    gpu = MultiHeadAttention.from_torch(theirs.cuda()).eval()
    for need_weights in (True, False):
        out, _ = gpu(query.cuda(), key.cuda(), value.cuda(), key_padding_mask=mask.cuda(), need_weights=need_weights)
        torch.testing.assert_close(out.cpu(), expected, atol=1e-4, rtol=1e-4)
    out, _ = gpu(query.cuda(), query.cuda(), query.cuda(), is_causal=True, need_weights=False)
    torch.testing.assert_close(out.cpu(), ours(query, query, query, is_causal=True)[0], atol=1e-4, rtol=1e-4)
