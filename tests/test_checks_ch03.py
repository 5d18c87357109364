"""Chapter 03's new checks reject the typical wrong answers, each on a case that names the mistake."""

from __future__ import annotations

import math

import pytest
import torch

from utils.attention import masked_softmax
from utils.course.checks import ExerciseFailed, check
from utils.course.checks.ch03 import reference_distance_attention


def distance_by_broadcasting(queries, keys, values, valid_lens=None):
    """Right values, but it builds the (batch, queries, keys, d) differences."""
    scores = -((queries.unsqueeze(2) - keys.unsqueeze(1)) ** 2).sum(-1) / math.sqrt(queries.shape[-1])
    return masked_softmax(scores, valid_lens) @ values


def distance_without_scale(queries, keys, values, valid_lens=None):
    scores = 2 * queries @ keys.transpose(1, 2) - (keys**2).sum(-1).unsqueeze(1)
    return masked_softmax(scores, valid_lens) @ values


def dot_product_only(queries, keys, values, valid_lens=None):
    """Drops ||k||², which (unlike ||q||²) differs from key to key."""
    scores = 2 * queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    return masked_softmax(scores, valid_lens) @ values


def positive_distance(queries, keys, values, valid_lens=None):
    """The sign flipped: the farthest key wins."""
    scores = (keys**2).sum(-1).unsqueeze(1) - 2 * queries @ keys.transpose(1, 2)
    return masked_softmax(scores / math.sqrt(queries.shape[-1]), valid_lens) @ values


@pytest.mark.parametrize(("answer", "message"), [
    (distance_by_broadcasting, r"queries \(2, 3, 4\).*largest intermediate tensor has 120 elements"),
    (distance_without_scale, r"queries \(2, 3, 4\).*your output.*Hint: the score is"),
    (dot_product_only, r"queries \(2, 3, 4\).*your output.*expand the square"),
    (positive_distance, r"queries \(2, 3, 4\).*your output.*the nearer the key, the higher"),
])
def test_wrong_distance_attention_fails(answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check("3.4", answer)


def test_reference_and_stub(capsys):
    check("3.4", reference_distance_attention)

    def stub(queries, keys, values, valid_lens=None):
        raise NotImplementedError

    check("3.4", stub)
    out = capsys.readouterr().out
    assert "Exercise 3.4: correct (5 cases, 3 of them hidden). 4 points." in out
    assert "not implemented yet" in out


def test_reference_equals_the_direct_distance():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 6), torch.randn(2, 5, 6), torch.randn(2, 5, 2)
    direct = -((q.unsqueeze(2) - k.unsqueeze(1)) ** 2).sum(-1) / math.sqrt(6)
    torch.testing.assert_close(reference_distance_attention(q, k, v), torch.softmax(direct, -1) @ v)
