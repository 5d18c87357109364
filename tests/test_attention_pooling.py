"""Chapter 04: attention pooling, the Keras-style per-step layer, the classifiers, the task."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.attention import AttentionPooling, PerStepAttention
from utils.classifiers import SentenceClassifier, last_valid_state, mean_over_valid
from utils.pooling_task import (
    build_and_train,
    evaluate,
    long_threshold,
    make_task,
    make_train_test,
    train_classifier,
    weight_on_evidence,
)


def _pooling(num_hiddens=6, seed=0):
    torch.manual_seed(seed)
    return AttentionPooling(num_hiddens, 5)


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(0, 7), min_size=1, max_size=5), seed=st.integers(0, 10_000))
def test_padding_gets_no_weight_for_any_batch_of_lengths(lengths, seed):
    steps = max(max(lengths), 1)
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.randn(len(lengths), steps, 6, generator=generator)
    valid_lens = torch.tensor(lengths)
    vector, weights = _pooling(seed=seed % 7)(outputs, valid_lens)
    padding = torch.arange(steps) >= valid_lens[:, None]
    assert weights.shape == (len(lengths), steps) and vector.shape == (len(lengths), 6)
    assert torch.all(weights[padding] == 0)
    expected_sums = (valid_lens > 0).float()  # an empty sequence gets all-zero weights
    torch.testing.assert_close(weights.sum(-1), expected_sums)
    assert torch.isfinite(vector).all()


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_what_sits_in_the_padding_never_changes_the_result(lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths) + 2
    outputs = torch.randn(len(lengths), steps, 6, generator=generator)
    valid_lens = torch.tensor(lengths)
    garbage = outputs.clone()
    garbage[torch.arange(steps) >= valid_lens[:, None]] = float("nan")
    pooling = _pooling()
    clean_vector, clean_weights = pooling(outputs, valid_lens)
    dirty_vector, dirty_weights = pooling(garbage, valid_lens)
    torch.testing.assert_close(dirty_vector, clean_vector)
    torch.testing.assert_close(dirty_weights, clean_weights)
    # and the same as pooling each sequence alone, without any padding
    for row, length in enumerate(lengths):
        alone_vector, alone_weights = pooling(outputs[row:row + 1, :length])
        torch.testing.assert_close(clean_vector[row:row + 1], alone_vector)
        torch.testing.assert_close(clean_weights[row, :length], alone_weights[0])


def test_pooling_matches_the_equation():
    pooling = _pooling()
    outputs = torch.randn(2, 4, 6)
    energies = torch.tanh(outputs @ pooling.project.weight.T + pooling.project.bias) @ pooling.score.weight.T
    weights = torch.softmax(energies.squeeze(-1), dim=-1)
    vector, got = pooling(outputs)
    torch.testing.assert_close(got, weights)
    torch.testing.assert_close(vector, (weights.unsqueeze(-1) * outputs).sum(1))


def test_without_a_mask_the_padding_takes_weight():
    outputs = torch.randn(1, 8, 6)
    _, weights = _pooling()(outputs)
    assert weights[0, 3:].sum() > 0.1


@pytest.mark.parametrize(
    ("outputs", "valid_lens", "error", "words"),
    [
        ([[1.0, 2.0]], None, TypeError, "torch.Tensor"),
        (torch.ones(2, 3, dtype=torch.long), None, TypeError, "floating point"),
        (torch.randn(2, 6), None, ValueError, "(batch, steps, 6)"),
        (torch.randn(2, 3, 5), None, ValueError, "got shape (2, 3, 5)"),
        (torch.randn(2, 0, 6), None, ValueError, "no time steps"),
        (torch.randn(2, 3, 6), torch.tensor([[1, 2]]), ValueError, "1-D"),
        (torch.randn(2, 3, 6), torch.tensor([1, 4]), ValueError, "<= the number of keys"),
        (torch.randn(2, 3, 6), torch.tensor([1.0, 2.0]), TypeError, "integers"),
    ],
)
def test_bad_input_is_named(outputs, valid_lens, error, words):
    with pytest.raises(error, match=None) as raised:
        _pooling()(outputs, valid_lens)
    assert words in str(raised.value)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="num_hiddens"):
        AttentionPooling(0)
    with pytest.raises(ValueError, match="num_steps"):
        PerStepAttention(4, 0)


def test_per_step_layer_is_tied_to_its_training_length():
    torch.manual_seed(0)
    layer = PerStepAttention(4, num_steps=5)
    vector, weights = layer(torch.randn(3, 5, 4))
    assert vector.shape == (3, 4) and weights.shape == (3, 5)
    with pytest.raises(RuntimeError, match="must match"):
        layer(torch.randn(3, 7, 4))
    sequences, _ = PerStepAttention(4, 5, return_sequences=True)(torch.randn(3, 5, 4))
    assert sequences.shape == (3, 5, 4)


def test_per_step_layer_puts_weight_on_padding_unless_masked():
    torch.manual_seed(0)
    layer = PerStepAttention(4, num_steps=6)
    x = torch.randn(2, 6, 4)
    valid_lens = torch.tensor([2, 6])
    _, unmasked = layer(x)
    _, masked = layer(x, valid_lens)
    assert unmasked[0, 2:].sum() > 0.5  # 4 of 6 steps are padding, energies within [-1, 1]
    assert masked[0, 2:].sum() == 0 and torch.allclose(masked.sum(-1), torch.ones(2))


def test_tanh_caps_how_much_one_step_can_get():
    layer = PerStepAttention(3, num_steps=10)
    with torch.no_grad():
        layer.W.fill_(100.0)
    x = torch.zeros(1, 10, 3)
    x[0, 4] = 1.0
    x[0, [0, 1, 2, 3, 5, 6, 7, 8, 9]] = -1.0
    _, weights = layer(x)
    ratio = torch.e ** 2
    assert abs(weights[0, 4].item() - ratio / (ratio + 9)) < 1e-4


def test_last_valid_state_and_mean_skip_the_padding():
    outputs = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    valid_lens = torch.tensor([2, 4])
    torch.testing.assert_close(last_valid_state(outputs, valid_lens), torch.stack([outputs[0, 1], outputs[1, 3]]))
    torch.testing.assert_close(mean_over_valid(outputs, valid_lens),
                               torch.stack([outputs[0, :2].mean(0), outputs[1].mean(0)]))
    with pytest.raises(ValueError, match=r"valid_lens must be in \[1, 4\]"):
        last_valid_state(outputs, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"shape \(batch,\) = \(2,\)"):
        mean_over_valid(outputs, torch.tensor([1, 2, 3]))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
def test_classifier_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    model = SentenceClassifier(20, 8, 6, pooling=pooling, bidirectional=bidirectional).eval()
    ids = torch.randint(1, 20, (3, 5))
    valid_lens = torch.tensor([2, 5, 3])
    logits, weights = model(ids, valid_lens)
    assert logits.shape == (3, 2)
    padded = torch.cat([ids, torch.randint(1, 20, (3, 4))], dim=1)  # longer padding, random ids in it
    logits_padded, weights_padded = model(padded, valid_lens)
    torch.testing.assert_close(logits_padded, logits)
    if pooling == "attention":
        assert weights_padded[:, 5:].sum() == 0
        assert weights_padded[0, 2:].sum() == 0
    else:
        assert weights is None


def test_last_state_is_the_state_at_the_last_valid_step():
    torch.manual_seed(0)
    model = SentenceClassifier(20, 8, 6, pooling="last").eval()
    ids = torch.randint(1, 20, (2, 6))
    valid_lens = torch.tensor([3, 6])
    outputs, h_n = model.encode(ids, valid_lens)
    torch.testing.assert_close(h_n[0], last_valid_state(outputs, valid_lens))
    alone, _ = model.lstm(model.embedding(ids[:1, :3]))
    torch.testing.assert_close(h_n[0, 0], alone[0, -1])


def test_classifier_rejects_bad_input():
    model = SentenceClassifier(20, 8, 6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        SentenceClassifier(20, 8, 6, pooling="max")
    with pytest.raises(ValueError, match="needs num_steps"):
        SentenceClassifier(20, 8, 6, pooling="per_step")
    with pytest.raises(ValueError, match=r"ids must be an integer tensor of shape \(batch, steps\)"):
        model(torch.randn(2, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"valid_lens must be in \[1, 3\]"):
        model(torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="forward"):
        torch.nn.LSTM(4, 4)()  # the bug from the wild: an LSTM called with no input


def test_task_is_deterministic_and_its_evidence_decides_the_label():
    first = make_task(50, max_sentences=6, seed=3)
    again = make_task(50, max_sentences=6, seed=3)
    other = make_task(50, max_sentences=6, seed=4)
    assert torch.equal(first.ids, again.ids) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.ids[:, :5], other.ids[:, :5])
    assert first.evidence.sum(-1).eq(3).all()
    for row in range(len(first)):
        deciding = [first.tokens[row][i] for i in first.evidence[row].nonzero().flatten().tolist()]
        assert deciding[1] == "not" and first.tokens[row].count("not") == 1
        assert (deciding[0] in ("am", "is", "are")) == bool(first.labels[row])
        assert first.vocab.decode(first.ids[row, :first.valid_lens[row]]) == first.tokens[row]
        cue = first.tokens[row].index("not")
        assert cue < max(first.valid_lens[row] // 2, 8)  # the negated sentence is in the first half
    assert (first.ids[torch.arange(first.ids.shape[1]) >= first.valid_lens[:, None]] == 0).all()
    assert 10 < int(first.labels.sum()) < 40


def test_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_sentences"):
        make_task(5, min_sentences=3, max_sentences=2)
    with pytest.raises(ValueError, match="num_examples"):
        make_task(-1)
    with pytest.raises(ValueError, match="evidence_within"):
        make_task(5, evidence_within=0.0)
    with pytest.raises(ValueError, match="pad_to"):
        make_task(5, max_sentences=3, pad_to=2)
    assert make_task(4, max_sentences=2, pad_to=40).ids.shape == (4, 40)


def test_weight_on_evidence():
    weights = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    evidence = torch.tensor([[True, False, False], [False, True, True]])
    torch.testing.assert_close(weight_on_evidence(weights, evidence), torch.tensor([0.5, 0.9]))
    with pytest.raises(ValueError, match="same shape"):
        weight_on_evidence(weights, evidence[:, :2])


def test_attention_learns_the_task_and_looks_at_the_evidence():
    train = make_task(600, max_sentences=3, seed=1)
    test = make_task(200, max_sentences=3, seed=2)
    torch.manual_seed(0)
    model = SentenceClassifier(len(train.vocab), 16, 16, pooling="attention")
    losses = train_classifier(model, train, num_updates=60, batch_size=32, lr=1e-2)
    result = evaluate(model, test)
    assert sum(losses[-10:]) < sum(losses[:10])
    assert result["accuracy"] > 0.9
    assert result["evidence_weight"] > 0.4


def test_on_long_passages_attention_beats_the_last_state_and_looks_at_the_evidence():
    """The chapter's claim, on a reduced version of the ``cpu`` comparison (a few seconds):
    the same budget for both poolings, the negated sentence in the first quarter."""
    config = {"num_train": 1500, "num_test": 400, "max_sentences": 16, "evidence_within": 0.25,
              "num_updates": 100, "batch_size": 32, "num_embed": 16, "num_hiddens": 16, "lr": 1e-2}
    train, test = make_train_test(config, seed=0)
    long = test.valid_lens >= long_threshold(test)
    cues = test.evidence.float().argmax(-1) + 1  # the position of "not"
    assert (test.valid_lens - cues)[long].min() > 50  # far from the end, where a last state is read
    results = {pooling: evaluate(build_and_train(pooling, False, train, config)[0], test)
               for pooling in ("last", "attention")}
    long_accuracy = {pooling: result["correct"][long].float().mean().item() for pooling, result in results.items()}
    assert long_accuracy["attention"] > 0.95
    assert long_accuracy["attention"] - long_accuracy["last"] > 0.2  # measured: 1.00 against 0.52
    assert results["attention"]["evidence_weight"] > 0.6  # measured: 0.97, on 3 of 5-99 tokens
