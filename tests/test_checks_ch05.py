"""Chapter 05's positional-encoding exercise (5.5): the reference passes, typical wrong answers
fail with a message that names the mistake and the first hint tier."""

from __future__ import annotations

import pytest
import torch

from utils.course.checks import ExerciseFailed, check, get_exercise
from utils.course.checks.ch05 import equivariance_error, reference_positional_encoding


def _angles(seq_len, d_model, exponent_step=2):
    position = torch.arange(seq_len, dtype=torch.float32)[:, None]
    index = torch.arange(0, d_model, 2, dtype=torch.float32) if exponent_step == 2 \
        else torch.arange(d_model // 2, dtype=torch.float32)
    return position * 10000.0 ** (-index / d_model)


def sines_then_cosines(seq_len, d_model):  # concatenated halves instead of interleaved pairs
    angle = _angles(seq_len, d_model)
    return torch.cat([angle.sin(), angle.cos()], -1)


def exponent_i_over_d(seq_len, d_model):  # 10000^(i/d) instead of 10000^(2i/d)
    angle = _angles(seq_len, d_model, exponent_step=1)
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(1)


def same_vector_everywhere(seq_len, d_model):  # depends on the feature only, not on the position
    return reference_positional_encoding(1, d_model).expand(seq_len, d_model).clone() + 0.5


def test_reference_passes_and_breaks_equivariance(capsys):
    check("5.5", reference_positional_encoding)
    assert "Exercise 5.5: correct (5 cases, 3 of them hidden). 4 points." in capsys.readouterr().out
    assert equivariance_error(reference_positional_encoding(6, 8), seed=0) > 1e-2
    assert equivariance_error(torch.zeros(6, 8), seed=0) < 1e-5


def test_reference_values_follow_the_formula():
    pe = reference_positional_encoding(5, 4)
    assert torch.allclose(pe[:, 0], torch.arange(5.0).sin()) and torch.allclose(pe[:, 1], torch.arange(5.0).cos())
    assert torch.allclose(pe[3, 2], torch.tensor(3 / 100.0).sin()) and torch.allclose(pe[3, 3], torch.tensor(0.03).cos())


@pytest.mark.parametrize(("answer", "message"), [
    (sines_then_cosines, "your encoding is"),
    (exponent_i_over_d, "your encoding is"),
    (same_vector_everywhere, "leaves the layer permutation equivariant"),
])
def test_wrong_answers_fail_with_the_first_hint(answer, message):
    with pytest.raises(ExerciseFailed) as failure:
        check("5.5", answer)
    text = str(failure.value)
    assert message in text
    assert "interleaved, not one half of sines" in text
    assert get_exercise("5.5").hints[0] in text


def test_stub_is_not_implemented(capsys):
    def stub(*args):
        raise NotImplementedError

    check("5.5", stub)
    assert "not implemented yet" in capsys.readouterr().out
