"""Chapter 02's new checks reject the typical wrong answers, each on a case that names the mistake."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from utils.attention import masked_softmax
from utils.course.checks import ExerciseFailed, check
from utils.course.checks.ch02 import ReferenceGeneralAttention


def general_attention(scale_by, use_mask=True, project_queries=False):
    """A GeneralAttention class with one typical mistake switched on."""

    class Answer(nn.Module):
        def __init__(self, query_size, key_size, dropout):
            super().__init__()
            self.W = (nn.Linear(query_size, key_size, bias=False) if project_queries
                      else nn.Linear(key_size, query_size, bias=False))
            self.dropout = nn.Dropout(dropout)

        def forward(self, queries, keys, values, valid_lens=None):
            scores = queries @ self.W(keys).transpose(1, 2)
            scores = scores / math.sqrt(scale_by(queries, keys))
            self.attention_weights = masked_softmax(scores, valid_lens if use_mask else None)
            return self.dropout(self.attention_weights) @ values

    return Answer


@pytest.mark.parametrize(("answer", "message"), [
    (general_attention(lambda q, k: k.shape[-1]), r"query_size 6, key_size 4.*not the key size"),
    (general_attention(lambda q, k: 1), r"query_size 6, key_size 4.*The scale is the square root"),
    (general_attention(lambda q, k: q.shape[-1], use_mask=False), r"valid_lens=tensor\(\[2, 5\]\)"),
    (general_attention(lambda q, k: q.shape[-1], project_queries=True), r"self\.W\.weight has shape \(4, 6\)"),
])
def test_wrong_general_attention_fails(answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check("2.4", answer)


def test_reference_and_stub(capsys):
    check("2.4", ReferenceGeneralAttention)

    class Stub(nn.Module):
        def __init__(self, query_size, key_size, dropout):
            super().__init__()
            raise NotImplementedError

    check("2.4", Stub)
    out = capsys.readouterr().out
    assert "Exercise 2.4: correct (5 cases, 3 of them hidden). 4 points." in out
    assert "not implemented yet" in out


def test_general_score_with_identity_is_the_scaled_dot_product():
    """With W = identity and equal sizes the general score is chapter 02's scaled dot product."""
    torch.manual_seed(0)
    layer = ReferenceGeneralAttention(4, 4, 0.0).eval()
    with torch.no_grad():
        layer.W.weight.copy_(torch.eye(4))
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    expected = torch.softmax(q @ k.transpose(1, 2) / 2, dim=-1) @ v
    torch.testing.assert_close(layer(q, k, v), expected)
