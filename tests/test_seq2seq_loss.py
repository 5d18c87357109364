"""masked_cross_entropy: padding never counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from utils.seq2seq import masked_cross_entropy


def example(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=g)
    valid_lens = torch.tensor([5, 2, 3])
    targets = torch.randint(1, 11, (3, 5), generator=g)
    targets[torch.arange(5) >= valid_lens[:, None]] = 0  # <pad>
    return logits, targets, valid_lens


def test_equals_cross_entropy_ignoring_pad():
    logits, targets, valid_lens = example()
    loss, num_tokens = masked_cross_entropy(logits, targets, valid_lens)
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0)
    torch.testing.assert_close(loss, expected)
    assert int(num_tokens) == 10


def test_padded_logits_and_targets_do_not_matter():
    logits, targets, valid_lens = example()
    loss, _ = masked_cross_entropy(logits, targets, valid_lens)
    pad = torch.arange(5) >= valid_lens[:, None]
    changed = logits.masked_fill(pad[..., None], 1e4)
    changed[0, 0] += 0  # valid positions untouched
    other_targets = targets.masked_fill(pad, 7)  # padding ids that are real tokens
    loss2, _ = masked_cross_entropy(changed, other_targets, valid_lens)
    assert loss2.item() == pytest.approx(loss.item(), abs=1e-6)


def test_no_gradient_reaches_padded_positions():
    logits, targets, valid_lens = example()
    logits.requires_grad_(True)
    masked_cross_entropy(logits, targets, valid_lens)[0].backward()
    pad = torch.arange(5) >= valid_lens[:, None]
    assert (logits.grad[pad] == 0).all() and (logits.grad[~pad] != 0).any()


def test_valid_lens_decide_what_counts_not_the_pad_id():
    logits, targets, valid_lens = example()
    # a row that only counts its first token = the cross-entropy of that token
    loss, n = masked_cross_entropy(logits[1:2], targets[1:2], torch.tensor([1]))
    torch.testing.assert_close(loss, F.cross_entropy(logits[1, :1], targets[1, :1]))
    assert int(n) == 1


def test_bf16_logits_and_empty_selection():
    logits, targets, valid_lens = example()
    loss, _ = masked_cross_entropy(logits.bfloat16(), targets, valid_lens)
    assert loss.dtype == torch.float32
    zero, n = masked_cross_entropy(logits, targets, torch.zeros(3, dtype=torch.long))
    assert zero.item() == 0.0 and int(n) == 0


def test_errors_name_the_argument():
    logits, targets, valid_lens = example()
    with pytest.raises(ValueError, match="logits"):
        masked_cross_entropy(logits[0], targets, valid_lens)
    with pytest.raises(ValueError, match="targets"):
        masked_cross_entropy(logits, targets[:, :4], valid_lens)
    with pytest.raises(ValueError, match="valid_lens"):
        masked_cross_entropy(logits, targets, valid_lens[:2])


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_equals_torch_and_ignores_padding(smoothing):
    logits, targets, valid_lens = example()
    loss, _ = masked_cross_entropy(logits, targets, valid_lens, label_smoothing=smoothing)
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0,
                               label_smoothing=smoothing)
    torch.testing.assert_close(loss, expected)
    # by hand: (1 - eps) * NLL of the reference + eps * the mean NLL over the vocabulary
    keep = torch.arange(5) < valid_lens[:, None]
    log_p = logits.log_softmax(-1)[keep]
    nll = -log_p.gather(1, targets[keep][:, None])[:, 0]
    torch.testing.assert_close(loss, ((1 - smoothing) * nll - smoothing * log_p.mean(-1)).mean())


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.1"])
def test_label_smoothing_out_of_range_is_an_error(bad):
    logits, targets, valid_lens = example()
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        masked_cross_entropy(logits, targets, valid_lens, label_smoothing=bad)
