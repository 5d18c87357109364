"""Positional encoding, and the Transformer layers against PyTorch's, weight for weight."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.attention import (
    LayerCache,
    MultiHeadAttention,
    PositionalEncoding,
    PositionWiseFFN,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    causal_mask,
    sinusoidal_positions,
)

D_MODEL, HEADS, FFN = 16, 4, 24
SRC_LENS = torch.tensor([7, 4, 1])
TGT_LENS = torch.tensor([5, 2, 5])


def close(got, expected, atol=1e-5):
    torch.testing.assert_close(got, expected, atol=atol, rtol=1e-5)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def padding(lengths, steps):
    """``(batch, steps)`` bool, True = padding (torch's convention)."""
    return torch.arange(steps) >= lengths[:, None]


# -- positional encoding ---------------------------------------------------------------------
def test_sinusoidal_positions_follow_the_formula():
    P = sinusoidal_positions(50, 6)
    assert P.shape == (50, 6) and P.dtype == torch.float32
    pos, i = 37, 2  # feature 2i = 4 is sin(pos / 10000 ** (2i / 6)), feature 2i + 1 its cosine
    angle = torch.tensor(pos / 10000 ** (2 * i / 6), dtype=torch.float64)
    close(P[pos, 2 * i], angle.sin().float())
    close(P[pos, 2 * i + 1], angle.cos().float())
    close(P[0], torch.tensor([0.0, 1, 0, 1, 0, 1]))
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # odd width: the last cosine is dropped
    close(sinusoidal_positions(3, 6, offset=20), P[20:23])


def test_sinusoidal_positions_equal_d2l():
    d2l = pytest.importorskip("d2l.torch")
    reference = d2l.PositionalEncoding(32, 0.0, max_len=60).P[0]
    close(sinusoidal_positions(60, 32), reference, atol=1e-4)  # d2l divides in float32


def test_positional_encoding_module_adds_the_offset_positions():
    encode = PositionalEncoding(D_MODEL)
    x = randn(2, 5, D_MODEL)
    close(encode(x), x + sinusoidal_positions(5, D_MODEL))
    close(encode(x[:, 3:], offset=3), encode(x)[:, 3:])
    long = randn(1, 300, D_MODEL)  # longer than the table built so far: it grows
    close(encode(long), long + sinusoidal_positions(300, D_MODEL))
    assert not list(encode.parameters()) and not list(encode.buffers())  # nothing to checkpoint
    with pytest.raises(ValueError, match=r"x must have shape \(batch, steps, d_model=16\); got \(2, 5, 8\)"):
        encode(randn(2, 5, 8))
    with pytest.raises(ValueError, match="offset must be an int >= 0; got -1"):
        encode(x, offset=-1)
    with pytest.raises(ValueError, match="d_model must be an int >= 1; got 0"):
        sinusoidal_positions(3, 0)


def test_positions_break_the_permutation_equivariance_of_self_attention():
    """Chapter 05's property: permuting the inputs of self-attention permutes its outputs, and
    nothing else changes. Add positions first and it no longer holds, which is the point."""
    torch.manual_seed(0)
    attention = MultiHeadAttention(D_MODEL, HEADS).eval()
    x, perm = randn(2, 6, D_MODEL), torch.tensor([3, 0, 5, 1, 4, 2])

    def self_attention(inputs):
        return attention(inputs, inputs, inputs)[0]

    close(self_attention(x[:, perm]), self_attention(x)[:, perm])  # equivariant without positions
    encode = PositionalEncoding(D_MODEL)
    with_positions = self_attention(encode(x[:, perm]))
    assert not torch.allclose(with_positions, self_attention(encode(x))[:, perm], atol=1e-3)


# -- the layers against torch ----------------------------------------------------------------
def encoder_pair(norm_first, activation="relu", seed=0):
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0, activation=activation,
                                        batch_first=True, norm_first=norm_first)
    randomise_norms(theirs)
    ours = TransformerEncoderLayer(D_MODEL, HEADS, FFN, activation=activation, norm_first=norm_first)
    return ours.load_from_torch(theirs), theirs


def decoder_pair(norm_first, activation="relu", seed=0):
    torch.manual_seed(seed)
    theirs = nn.TransformerDecoderLayer(D_MODEL, HEADS, FFN, dropout=0.0, activation=activation,
                                        batch_first=True, norm_first=norm_first)
    randomise_norms(theirs)
    ours = TransformerDecoderLayer(D_MODEL, HEADS, FFN, activation=activation, norm_first=norm_first)
    return ours.load_from_torch(theirs), theirs


@torch.no_grad()
def randomise_norms(layer):
    """torch starts LayerNorms at weight 1, bias 0 and attention biases at 0: make every weight count."""
    for name, parameter in layer.named_parameters():
        if "norm" in name or name.endswith("bias"):
            parameter.normal_()


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padding"])
def test_encoder_layer_equals_torch(norm_first, activation, masked):
    ours, theirs = encoder_pair(norm_first, activation)
    x = randn(3, 7, D_MODEL)
    pad = padding(SRC_LENS, 7) if masked else None
    theirs.train()  # train mode (dropout 0) keeps torch off its inference fast path
    expected = theirs(x, src_key_padding_mask=pad)
    got, weights = ours(x, key_padding_mask=pad)
    close(got, expected)
    assert weights is None
    if masked:  # the same mask as lengths, and torch's inference path on the real positions
        close(ours(x, valid_lens=SRC_LENS)[0], expected)
        theirs.eval()
        with torch.no_grad():
            close(ours(x, valid_lens=SRC_LENS)[0][~pad], theirs(x, src_key_padding_mask=pad)[~pad])


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
@pytest.mark.parametrize("masked", [False, True], ids=["causal", "causal+padding"])
def test_decoder_layer_equals_torch(norm_first, masked):
    ours, theirs = decoder_pair(norm_first)
    x, memory = randn(3, 5, D_MODEL, seed=1), randn(3, 7, D_MODEL, seed=2)
    causal = causal_mask(5)
    masks = dict(memory_key_padding_mask=padding(SRC_LENS, 7), tgt_key_padding_mask=padding(TGT_LENS, 5)) \
        if masked else {}
    expected = theirs(x, memory, tgt_mask=causal, tgt_is_causal=True, **masks)
    got, cache, weights = ours(x, memory, **masks)
    valid = ~padding(TGT_LENS, 5) if masked else torch.ones(3, 5, dtype=torch.bool)
    # a padded target position is a query nobody reads; torch gives it NaN when it has padding
    # in front of itself only, so compare the real ones
    close(got[valid], expected[valid])
    assert weights is None and isinstance(cache, LayerCache) and cache.self_k.shape == (3, HEADS, 5, D_MODEL // HEADS)
    if masked:  # source lengths instead of the source padding mask: the same real outputs
        close(ours(x, memory, memory_valid_lens=SRC_LENS)[0][valid], expected[valid])


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_gradients_equal_torch(norm_first):
    ours, theirs = decoder_pair(norm_first)
    encoder, their_encoder = encoder_pair(norm_first, seed=3)
    src, tgt = randn(3, 7, D_MODEL, seed=4), randn(3, 5, D_MODEL, seed=5)
    pad = padding(SRC_LENS, 7)
    ours_src, their_src = src.clone().requires_grad_(), src.clone().requires_grad_()
    memory = encoder(ours_src, key_padding_mask=pad)[0]
    ours(tgt, memory, memory_key_padding_mask=pad)[0].square().sum().backward()
    their_memory = their_encoder(their_src, src_key_padding_mask=pad)
    theirs(tgt, their_memory, tgt_mask=causal_mask(5), tgt_is_causal=True,
           memory_key_padding_mask=pad).square().sum().backward()
    close(ours_src.grad, their_src.grad, atol=1e-4)
    ours_grads = dict(ours.named_parameters())
    close(ours_grads["cross_attn.out_proj.weight"].grad, theirs.multihead_attn.out_proj.weight.grad, atol=1e-4)
    close(ours_grads["ffn.linear1.weight"].grad, theirs.linear1.weight.grad, atol=1e-4)
    close(ours_grads["norm3.weight"].grad, theirs.norm3.weight.grad, atol=1e-4)
    close(encoder.self_attn.q_proj.weight.grad, their_encoder.self_attn.in_proj_weight.grad[:D_MODEL], atol=1e-4)


def test_other_weights_give_other_outputs():
    """The equality tests can fail: a layer whose weights were not copied differs from torch's."""
    ours, theirs = encoder_pair(True)
    torch.manual_seed(9)
    stranger = TransformerEncoderLayer(D_MODEL, HEADS, FFN)
    x = randn(3, 7, D_MODEL)
    theirs.train()
    assert not torch.allclose(stranger(x)[0], theirs(x), atol=1e-3)
    with torch.no_grad():
        ours.norm2.bias.add_(0.1)
    assert not torch.allclose(ours(x)[0], theirs(x), atol=1e-3)


# -- the decoder layer's cache -----------------------------------------------------------
@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_decoder_layer_step_by_step_with_cache_equals_the_whole_target(norm_first):
    ours, _ = decoder_pair(norm_first)
    ours.eval()
    x, memory = randn(3, 6, D_MODEL, seed=1), randn(3, 7, D_MODEL, seed=2)
    whole, _, whole_weights = ours(x, memory, memory_valid_lens=SRC_LENS, need_weights=True)
    cache = ours.start_cache(memory)
    for t in range(6):
        out, cache, weights = ours(x[:, t : t + 1], cache=cache, memory_valid_lens=SRC_LENS, need_weights=True)
        close(out[:, 0], whole[:, t])
        close(weights[:, :, 0], whole_weights[:, :, t])
    assert cache.self_k.shape[2] == 6
    # two chunks: positions 3..5 attend causally among themselves and to the cached 0..2
    _, cache, _ = ours(x[:, :3], memory, memory_valid_lens=SRC_LENS)
    rest, _, _ = ours(x[:, 3:], cache=cache, memory_valid_lens=SRC_LENS)
    close(rest, whole[:, 3:])
    assert whole_weights.shape == (3, HEADS, 6, 7)
    assert (whole_weights[1, :, :, 4:] == 0).all()  # no weight on padded source positions
    close(whole_weights.sum(-1), torch.ones(3, HEADS, 6))


def test_a_future_target_position_does_not_change_earlier_outputs():
    ours, _ = decoder_pair(True)
    x, memory = randn(2, 6, D_MODEL, seed=1), randn(2, 7, D_MODEL, seed=2)
    changed = x.clone()
    changed[:, 4] += 5.0
    before, after = ours(x, memory)[0], ours(changed, memory)[0]
    close(after[:, :4], before[:, :4])
    assert not torch.allclose(after[:, 4:], before[:, 4:], atol=1e-3)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="d_model=10 must be divisible by num_heads=4"):
        TransformerEncoderLayer(10, 4, 8)
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerDecoderLayer(8, 2, 8, activation="tanh")
    with pytest.raises(TypeError, match="norm_first must be a bool"):
        TransformerEncoderLayer(8, 2, 8, norm_first="yes")
    layer = TransformerDecoderLayer(8, 2, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, steps, d_model=8\); got \(2, 3\)"):
        layer(torch.zeros(2, 3), torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match="give memory"):
        layer(torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match=r"memory must have shape \(batch, src_steps, d_model=8\)"):
        layer(torch.zeros(2, 3, 8), torch.zeros(2, 4, 6))
    theirs = nn.TransformerEncoderLayer(8, 2, 8, batch_first=True, norm_first=False)
    with pytest.raises(ValueError, match="norm_first=False"):
        TransformerEncoderLayer(8, 2, 8).load_from_torch(theirs)
    with pytest.raises(ValueError, match="activation is relu"):
        TransformerEncoderLayer(8, 2, 8, activation="gelu", norm_first=False).load_from_torch(theirs)
    with pytest.raises(TypeError, match="must be an nn.TransformerDecoderLayer"):
        layer.load_from_torch(theirs)


def test_attend_to_projected_keys_equals_forward_and_checks_shapes():
    torch.manual_seed(0)
    attention = MultiHeadAttention(D_MODEL, HEADS).eval()
    query, memory = randn(2, 3, D_MODEL), randn(2, 5, D_MODEL, seed=1)
    k, v = attention.project_keys_values(memory, memory)
    assert k.shape == v.shape == (2, HEADS, 5, D_MODEL // HEADS)
    lens = torch.tensor([5, 2])
    expected = attention(query, memory, memory, valid_lens=lens)
    got = attention.attend(query, k, v, valid_lens=lens)
    close(got[0], expected[0])
    close(got[1], expected[1])
    with pytest.raises(ValueError, match=r"k must have shape \(batch=2, heads=4, keys, head_dim=4\)"):
        attention.attend(query, memory, v)
    with pytest.raises(ValueError, match="k and v must have the same number of keys"):
        attention.attend(query, k, v[:, :, :3])


def test_the_feed_forward_block_works_on_each_position_alone():
    torch.manual_seed(0)
    ffn = PositionWiseFFN(8, 16)
    x = torch.randn(2, 5, 8)
    out = ffn(x)
    for position in range(5):  # one position at a time gives the same: positions do not mix here
        torch.testing.assert_close(ffn(x[:, position : position + 1])[:, 0], out[:, position])
    torch.testing.assert_close(out, ffn.linear2(torch.relu(ffn.linear1(x))))
