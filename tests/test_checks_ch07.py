"""Chapter 07's beam-search exercise (7.5): the reference passes and agrees with
``utils.seq2seq.beam_search``; typical wrong answers fail with the first hint tier."""

from __future__ import annotations

import pytest
import torch

from utils.course.checks import ExerciseFailed, check, get_exercise
from utils.course.checks.ch07 import call_beam_step, library_beam_search, reference_beam_step


def best_token_per_beam(scores, log_probs, state):  # no competition between the beams
    batch, beams = scores.shape
    best, tokens = log_probs.view(batch, beams, -1).max(-1)
    return scores + best, tokens, torch.arange(beams).expand(batch, beams), state


def state_not_reordered(scores, log_probs, state):
    new_scores, tokens, parents, _ = reference_beam_step(scores, log_probs, state)
    return new_scores, tokens, parents, state


def parents_without_sentence_offset(scores, log_probs, state):  # row k of sentence 0 for every sentence
    new_scores, tokens, parents, _ = reference_beam_step(scores, log_probs, state)
    rows = parents.flatten()
    return new_scores, tokens, parents, tuple(part.index_select(1, rows) for part in state)


def log_probs_only(scores, log_probs, state):  # forgets the running scores
    batch, beams = scores.shape
    return reference_beam_step(torch.zeros_like(scores), log_probs, state)


def test_reference_passes(capsys):
    check("7.5", reference_beam_step)
    assert "Exercise 7.5: correct (5 cases, 3 of them hidden). 4 points." in capsys.readouterr().out


@pytest.mark.parametrize(("seed", "valid_lens", "beam_size", "max_len"), [
    (5, [4, 2, 5], 3, 6), (6, [3, 3], 2, 4), (7, [5], 4, 5), (8, [2, 6, 3, 4], 1, 5),
])
def test_a_beam_search_built_on_the_reference_step_equals_the_library(seed, valid_lens, beam_size, max_len):
    ours = call_beam_step(reference_beam_step, ("decode", seed, valid_lens, beam_size, max_len))
    assert ours == library_beam_search(seed, valid_lens, beam_size, max_len)


@pytest.mark.parametrize(("answer", "message"), [
    (best_token_per_beam, "your new scores"),
    (state_not_reordered, "your reordered h"),
    (parents_without_sentence_offset, "state rows of sentence 1 are 3, 4, 5"),
    (log_probs_only, "your new scores"),
])
def test_wrong_answers_fail_with_the_first_hint(answer, message):
    with pytest.raises(ExerciseFailed) as failure:
        check("7.5", answer)
    text = str(failure.value)
    assert message in text
    assert "whichever beams they come from" in text and get_exercise("7.5").hints[0] in text


def test_stub_is_not_implemented(capsys):
    def stub(*args):
        raise NotImplementedError

    check("7.5", stub)
    assert "not implemented yet" in capsys.readouterr().out
