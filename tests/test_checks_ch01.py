"""Chapter 01's new checks reject the typical wrong answers, each on a case that names the mistake."""

from __future__ import annotations

import pytest
import torch

from utils.attention import masked_softmax
from utils.course.checks import ExerciseFailed, check
from utils.course.checks.ch01 import reference_causal_masked_softmax


def causal_borrowing_lengths(scores, valid_lens):
    """Section 3's picture: a padding query borrows the last real length instead of seeing nothing."""
    positions = torch.arange(scores.shape[-2]) + scores.shape[-1] - scores.shape[-2]
    return masked_softmax(scores, torch.minimum(positions + 1, valid_lens[:, None]))


def causal_from_the_first_key(scores, valid_lens):
    """Query i at position i even when there are fewer queries than keys (no offset)."""
    positions = torch.arange(scores.shape[-2])
    real = positions < valid_lens[:, None]
    return masked_softmax(scores, torch.where(real, positions + 1, 0))


def causal_with_nan_rows(scores, valid_lens):
    """−∞ everywhere a query may not look: a padding query's row is 0/0."""
    num_queries, num_keys = scores.shape[-2:]
    query = torch.arange(num_queries)[:, None] + num_keys - num_queries
    key = torch.arange(num_keys)
    keep = (key <= query) & (query < valid_lens[:, None, None])
    return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)


@pytest.mark.parametrize(("answer", "message"), [
    (causal_borrowing_lengths, r"tensor\(\[4, 2\]\).*Hint: two rules at once"),
    (causal_from_the_first_key, r"positions 3 and 4 of 5.*the LAST positions"),
    (causal_with_nan_rows, r"tensor\(\[4, 2\]\).*NaN.*padding query must get all zeros"),
])
def test_wrong_causal_masks_fail(answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check("1.5", answer)


def test_reference_and_stub(capsys):
    check("1.5", reference_causal_masked_softmax)

    def stub(scores, valid_lens):
        raise NotImplementedError

    check("1.5", stub)
    out = capsys.readouterr().out
    assert "Exercise 1.5: correct (6 cases, 4 of them hidden). 4 points." in out
    assert "not implemented yet" in out
