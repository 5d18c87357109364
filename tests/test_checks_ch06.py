"""Chapter 06's checks reject the typical wrong answers, each on a case that names the mistake."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from utils.course.checks import ExerciseFailed, check, get_exercise
from utils.course.checks.ch06 import (
    bidirectional_final_state,
    reference_bridge_directions,
    reference_clipped_matches,
    reference_teacher_forcing_io,
)


def swapped_io(target_ids, bos, eos, pad):
    tgt_in, tgt_out, valid_lens = reference_teacher_forcing_io(target_ids, bos, eos, pad)
    return tgt_out, tgt_in, valid_lens


def io_without_padding_value(target_ids, bos, eos, pad):
    tgt_in, tgt_out, valid_lens = reference_teacher_forcing_io(target_ids, bos, eos, 0)
    return tgt_in, tgt_out, valid_lens


def accuracy_counting_padding(logits, targets, valid_lens):
    return (logits.argmax(-1) == targets).float().mean()


def unclipped_matches(hypothesis, references, n):
    counts = Counter(tuple(hypothesis[i : i + n]) for i in range(len(hypothesis) - n + 1))
    grams = {tuple(ref[i : i + n]) for ref in references for i in range(len(ref) - n + 1)}
    return sum(count for gram, count in counts.items() if gram in grams), sum(counts.values())


def clipped_by_first_reference_only(hypothesis, references, n):
    return reference_clipped_matches(hypothesis, references[:1], n)


def greedy_without_cut(model, src, src_valid_lens, bos, eos, max_len):
    memory = model.encode(src, src_valid_lens)
    state = model.decoder.init_state(memory)
    tokens, rows = torch.full((src.shape[0],), bos), []
    for _ in range(max_len):
        logits, state, _ = model.decoder.step(tokens, state, memory)
        tokens = logits.argmax(-1)
        rows.append(tokens)
    return torch.stack(rows, 1).tolist()  # never cut at <eos>


def greedy_ignoring_max_len(model, src, src_valid_lens, bos, eos, max_len):
    return greedy_without_cut(model, src, src_valid_lens, bos, eos, max_len + 1)


def bridge_by_one_reshape(final, num_layers):  # mixes the rows of different sentences
    _, batch, hiddens = final.shape
    return final.reshape(num_layers, batch, 2 * hiddens)


def bridge_direction_major(final, num_layers):  # assumes all forward layers first: right for 1 layer only
    return torch.cat([final[:num_layers], final[num_layers:]], -1)


def bridge_backward_first(final, num_layers):
    return torch.cat([final[1::2], final[0::2]], -1)


def test_the_bridged_state_holds_each_direction_where_it_ended():
    """Forward half of the top layer = the forward output at the last step; backward half = the
    backward output at the first step (what the reference's layout claims)."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 3, 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        outputs, (h, _) = lstm(torch.randn(2, 5, 4))
    top = reference_bridge_directions(h, 2)[-1]  # (batch, 2H)
    assert torch.allclose(top[:, :3], outputs[:, -1, :3]) and torch.allclose(top[:, 3:], outputs[:, 0, 3:])
    assert bidirectional_final_state(2, 3, 4, seed=0).shape == (4, 3, 4)


@pytest.mark.parametrize(("answer", "message"), [
    (bridge_by_one_reshape, "num_layers=1"),
    (bridge_direction_major, "num_layers=2"),
    (bridge_backward_first, "num_layers=1"),
])
def test_wrong_bridges_fail_with_the_first_hint(answer, message):
    with pytest.raises(ExerciseFailed) as failure:
        check("6.5", answer)
    text = str(failure.value)
    assert message in text and "your bridged state" in text
    assert "which of the two varies fastest" in text and get_exercise("6.5").hints[0] in text


@pytest.mark.parametrize(("exercise_id", "answer", "message"), [
    ("6.1", swapped_io, "tgt_in is"),
    ("6.1", io_without_padding_value, "other special ids"),
    ("6.2", accuracy_counting_padding, "your accuracy"),
    ("6.3", unclipped_matches, "'le chat le chat le chat'"),
    ("6.3", clipped_by_first_reference_only, "n=2"),
    ("6.4", greedy_without_cut, "sentence"),
    ("6.4", greedy_ignoring_max_len, "sentence"),
])
def test_wrong_answers_fail(exercise_id, answer, message):
    with pytest.raises(ExerciseFailed, match=message):
        check(exercise_id, answer)


def test_stub_is_not_implemented(capsys):
    def stub(*args):
        raise NotImplementedError

    for exercise_id in ("6.1", "6.2", "6.3", "6.4", "6.5"):
        check(exercise_id, stub)
    assert capsys.readouterr().out.count("not implemented yet") == 5
