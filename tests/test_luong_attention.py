"""utils.attention.LuongAttention: the scores by hand, masking, and the decoder that uses it."""

from __future__ import annotations

import pytest
import torch

from utils.attention import LuongAttention, masked_softmax


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g), torch.tensor([5, 2])


@pytest.mark.parametrize("score", ["dot", "general"])
def test_scores_weights_and_context_by_hand(score):
    torch.manual_seed(0)
    attention = LuongAttention(4, score)
    queries, keys, valid_lens = _inputs()
    context = attention(queries, keys, keys, valid_lens)
    projected = queries @ attention.W_a.weight.T if score == "general" else queries  # an nn.Linear
    expected_weights = masked_softmax(projected @ keys.transpose(1, 2), valid_lens)
    torch.testing.assert_close(attention.attention_weights, expected_weights)
    torch.testing.assert_close(context, expected_weights @ keys)
    assert attention.attention_weights[1, :, 2:].abs().sum() == 0  # padded source steps get nothing


def test_bad_score_and_shapes_name_the_argument():
    with pytest.raises(ValueError, match="score must be 'dot' or 'general'; got 'additive'"):
        LuongAttention(4, "additive")
    queries, keys, valid_lens = _inputs()
    with pytest.raises(ValueError, match=r"keys must have shape \(batch, steps, features\); got \(5, 4\)"):
        LuongAttention(4)(queries, keys[0], keys, valid_lens)


def test_checkpoints_from_before_the_module_still_load():
    """A Luong decoder's state dict used to hold ``W_a.weight`` on the decoder itself."""
    from utils.seq2seq import ModelConfig, build_model

    model = build_model(ModelConfig("luong", embed_size=4, num_hiddens=6, num_layers=1), 9, 11)
    state = model.state_dict()
    old_style = {key.replace("decoder.attention.W_a", "decoder.W_a"): value for key, value in state.items()}
    assert "decoder.W_a.weight" in old_style and "decoder.attention.W_a.weight" not in old_style
    fresh = build_model(ModelConfig("luong", embed_size=4, num_hiddens=6, num_layers=1), 9, 11)
    fresh.load_state_dict(old_style)
    torch.testing.assert_close(fresh.decoder.W_a.weight, model.decoder.W_a.weight)
