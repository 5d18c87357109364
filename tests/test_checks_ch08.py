"""Chapter 08's exercises: the references pass, agree with the library and with PyTorch, and
typical wrong answers fail with the first hint tier."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from utils.attention import causal_mask
from utils.course.checks import ExerciseFailed, check, get_exercise
from utils.course.checks.ch08 import (
    reference_cached_causal_mask,
    reference_encoder_layer,
    reference_label_smoothed_loss,
    reference_transformer_lr,
)

REFERENCES = {"8.1": reference_transformer_lr, "8.2": reference_cached_causal_mask,
              "8.3": reference_label_smoothed_loss, "8.4": reference_encoder_layer}


@pytest.mark.parametrize("exercise_id", sorted(REFERENCES))
def test_reference_passes(exercise_id, capsys):
    check(exercise_id, REFERENCES[exercise_id])
    assert f"Exercise {exercise_id}: correct" in capsys.readouterr().out


def test_the_schedule_peaks_at_the_end_of_the_warm_up():
    lr = reference_transformer_lr(torch.arange(1, 9001), 512, 4000)
    assert int(lr.argmax()) + 1 == 4000
    assert lr[3999].item() == pytest.approx(512 ** -0.5 * 4000 ** -0.5)


def test_the_cached_mask_is_the_causal_mask_without_a_cache_and_its_last_rows_with_one():
    assert torch.equal(reference_cached_causal_mask(5, 0), causal_mask(5))
    full = causal_mask(7)  # 7 positions: 4 cached, then 3 new queries see the last 3 rows
    assert torch.equal(reference_cached_causal_mask(3, 4), full[4:])


def test_label_smoothing_equals_torchs_on_the_non_padding_rows():
    logits, targets = torch.randn(6, 9), torch.tensor([1, 0, 4, 8, 0, 2])
    kept = targets != 0
    expected = F.cross_entropy(logits[kept], targets[kept], label_smoothing=0.3)
    assert torch.allclose(reference_label_smoothed_loss(logits, targets, 0.3, 0), expected, atol=1e-6)


def lr_without_scale(steps, d_model, warmup):
    steps = steps.double()
    return torch.minimum(steps ** -0.5, steps * warmup ** -1.5)


def mask_without_offset(steps, past):  # chapter 05's mask, top-left aligned: hides cached keys
    return torch.ones(steps, past + steps, dtype=torch.bool).triu(diagonal=1)


def loss_counting_padding(logits, targets, epsilon, pad_id):
    return F.cross_entropy(logits, targets, label_smoothing=epsilon)


def loss_smoothing_over_the_others_only(logits, targets, epsilon, pad_id):  # eps / (V - 1) elsewhere
    log_probs, keep = logits.log_softmax(-1), targets != pad_id
    target_term = -log_probs.gather(-1, targets[:, None]).squeeze(-1)
    others = -(log_probs.sum(-1) + target_term) / (logits.shape[-1] - 1)
    return (((1 - epsilon) * target_term + epsilon * others) * keep).sum() / keep.sum()


def post_ln_layer(x, valid_lens, self_attn, norm1, norm2, ffn):
    x = norm1(x + self_attn(x, x, x, valid_lens=valid_lens)[0])
    return norm2(x + ffn(x))


def layer_without_mask(x, valid_lens, self_attn, norm1, norm2, ffn):
    h = norm1(x)
    x = x + self_attn(h, h, h)[0]
    return x + ffn(norm2(x))


@pytest.mark.parametrize(("exercise_id", "answer"), [
    ("8.1", lr_without_scale),
    ("8.2", mask_without_offset),
    ("8.3", loss_counting_padding),
    ("8.3", loss_smoothing_over_the_others_only),
    ("8.4", post_ln_layer),
    ("8.4", layer_without_mask),
])
def test_wrong_answers_fail_with_the_first_hint(exercise_id, answer):
    with pytest.raises(ExerciseFailed) as failure:
        check(exercise_id, answer)
    assert get_exercise(exercise_id).hints[0] in str(failure.value)
