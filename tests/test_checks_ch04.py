"""Chapter 04's checks reject the typical wrong answers, each on a case that names the mistake."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.attention import masked_softmax
from utils.course.checks import ExerciseFailed, check, get_exercise
from utils.course.checks.ch04 import ReferenceStructuredSelfAttention, reference_redundancy_penalty


# ---- 4.3: the redundancy penalty -----------------------------------------------------------------
def penalty_over_steps(A):
    """A^T A: a (steps, steps) overlap, compared with the wrong identity."""
    overlap = A.transpose(1, 2) @ A
    return ((overlap - torch.eye(A.shape[2])) ** 2).sum(dim=(1, 2))


def penalty_not_squared(A):
    """The Frobenius norm itself, not its square."""
    return torch.linalg.matrix_norm(A @ A.transpose(1, 2) - torch.eye(A.shape[1]))


def penalty_averaged(A):
    return ((A @ A.transpose(1, 2) - torch.eye(A.shape[1])) ** 2).mean(dim=(1, 2))


def penalty_for_the_batch(A):
    return ((A @ A.transpose(1, 2) - torch.eye(A.shape[1])) ** 2).sum()


@pytest.mark.parametrize(("answer", "message"), [
    (penalty_over_steps, r"A of shape \(2, 3, 5\).*your penalty.*Hint: the penalty compares every pair of heads"),
    (penalty_not_squared, r"A of shape \(2, 3, 5\).*your penalty.*squared differences"),
    (penalty_averaged, r"A of shape \(2, 3, 5\).*your penalty.*not their mean"),
    (penalty_for_the_batch, r"one number for the whole batch; expected one per passage, shape \(2,\)"),
])
def test_wrong_penalties_fail(answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check("4.3", answer)


def test_penalty_is_zero_for_heads_on_distinct_steps_and_grows_with_overlap():
    distinct = torch.eye(3, 5).unsqueeze(0)  # head h on step h
    assert reference_redundancy_penalty(distinct).item() == 0.0
    same = torch.zeros(1, 3, 5)
    same[0, :, 2] = 1.0  # three heads on one step: A A^T is all ones
    assert reference_redundancy_penalty(same).item() == 6.0
    uniform = torch.full((1, 1, 4), 0.25)  # one head spread over 4 steps: (1/4 - 1)^2
    assert reference_redundancy_penalty(uniform).item() == pytest.approx(0.5625)


# ---- 4.5: structured self-attention --------------------------------------------------------------
class Structured(nn.Module):
    """A configurable wrong answer: each flag is one typical mistake."""

    def __init__(self, num_hiddens, num_energy_hiddens, num_heads, *, softmax_over_heads=False,
                 mask=True, zero_padding=True, heads_last=False):
        super().__init__()
        self.W_s1 = nn.Linear(num_hiddens, num_energy_hiddens, bias=False)
        self.W_s2 = nn.Linear(num_energy_hiddens, num_heads, bias=False)
        self.softmax_over_heads, self.mask = softmax_over_heads, mask
        self.zero_padding, self.heads_last = zero_padding, heads_last

    def forward(self, outputs, valid_lens=None):
        if valid_lens is not None and self.zero_padding:
            keep = torch.arange(outputs.shape[1]) < valid_lens[:, None]
            outputs = outputs.masked_fill(~keep[..., None], 0.0)
        energies = self.W_s2(torch.tanh(self.W_s1(outputs)))  # (batch, steps, heads)
        if self.softmax_over_heads:
            A = torch.softmax(energies, dim=-1).transpose(1, 2)
        else:
            A = masked_softmax(energies.transpose(1, 2), valid_lens if self.mask else None)
        M = A @ outputs
        return (M, A.transpose(1, 2)) if self.heads_last else (M, A)


def wrong(**flags):
    return lambda *sizes: Structured(*sizes, **flags)


@pytest.mark.parametrize(("answer", "message"), [
    (wrong(softmax_over_heads=True), r"StructuredSelfAttention\(6, 5, 3\).*your A.*never over the heads"),
    (wrong(heads_last=True), r"your A has shape \(2, 4, 3\); expected \(batch, num_heads, steps\) = \(2, 3, 4\)"),
    (wrong(mask=False), r"valid_lens=tensor\(\[2, 5, 3\]\).*your A.*padding gets no weight"),
    (wrong(zero_padding=False), r"inf in the padding.*\(a hidden case\).*your M contains NaN"),
])
def test_wrong_structured_attention_fails(answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check("4.5", answer)


def test_missing_layer_names_are_named():
    class Unnamed(nn.Module):
        def __init__(self, num_hiddens, num_energy_hiddens, num_heads):
            super().__init__()
            self.first = nn.Linear(num_hiddens, num_energy_hiddens, bias=False)

        def forward(self, outputs, valid_lens=None):
            raise AssertionError("never reached")

    with pytest.raises(ExerciseFailed, match=r"needs a sub-layer self\.W_s1"):
        check("4.5", Unnamed)


def test_one_head_is_attention_pooling_without_a_bias():
    torch.manual_seed(0)
    layer = ReferenceStructuredSelfAttention(6, 5, 1)
    outputs, valid_lens = torch.randn(3, 4, 6), torch.tensor([4, 2, 1])
    M, A = layer(outputs, valid_lens)
    energies = (torch.tanh(outputs @ layer.W_s1.weight.T) @ layer.W_s2.weight.T).squeeze(-1)
    weights = masked_softmax(energies, valid_lens)
    torch.testing.assert_close(A[:, 0], weights)
    torch.testing.assert_close(M[:, 0], (weights.unsqueeze(-1) * outputs).sum(1))


def test_references_pass_and_stubs_are_not_implemented(capsys):
    check("4.3", reference_redundancy_penalty)
    check("4.5", ReferenceStructuredSelfAttention)

    def stub(*args):
        raise NotImplementedError

    class StubLayer(nn.Module):
        def __init__(self, num_hiddens, num_energy_hiddens, num_heads):
            super().__init__()
            self.W_s1 = nn.Linear(num_hiddens, num_energy_hiddens, bias=False)
            self.W_s2 = nn.Linear(num_energy_hiddens, num_heads, bias=False)

        def forward(self, outputs, valid_lens=None):
            raise NotImplementedError()

    check("4.3", stub)
    check("4.5", StubLayer)
    out = capsys.readouterr().out
    assert "Exercise 4.3: correct (4 cases, 2 of them hidden). 3 points." in out
    assert "Exercise 4.5: correct (4 cases, 2 of them hidden). 5 points." in out
    assert out.count("not implemented yet") == 2
    assert get_exercise("4.5").points > get_exercise("4.4").points


# ---- 4.1, 4.2, 4.4: the lesson's poolings -------------------------------------------------------
def last_step_of_the_tensor(outputs, valid_lens):
    return outputs[:, -1]


def mean_over_every_step(outputs, valid_lens):
    return outputs.mean(dim=1)


class PoolingWithoutZeroedPadding(nn.Module):
    """Masks the softmax but lets inf in the padding reach the sum: 0 * inf is NaN."""

    def __init__(self, num_hiddens, num_energy_hiddens):
        super().__init__()
        self.project = nn.Linear(num_hiddens, num_energy_hiddens)
        self.score = nn.Linear(num_energy_hiddens, 1, bias=False)

    def forward(self, outputs, valid_lens=None):
        weights = masked_softmax(self.score(torch.tanh(self.project(outputs))).squeeze(-1), valid_lens)
        return (weights.unsqueeze(-1) * outputs).sum(dim=1), weights


@pytest.mark.parametrize(("exercise_id", "answer", "message"), [
    ("4.1", last_step_of_the_tensor, r"valid_lens=tensor\(\[2, 4\]\).*Hint: sequence b's last real step"),
    ("4.2", mean_over_every_step, r"valid_lens=tensor\(\[2, 4\]\).*Hint: average over the real steps only"),
    ("4.4", PoolingWithoutZeroedPadding, r"inf in the padding.*\(a hidden case\).*contain NaN.*0 × inf is NaN"),
])
def test_wrong_poolings_fail(exercise_id, answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check(exercise_id, answer)
