"""Chapter 04: attention pooling, the Keras-style per-step layer, the classifiers, the task."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.attention import AttentionPooling, PerStepAttention
from utils.pooling import (
    ANIMALS,
    PoolingTask,
    accuracy_by_length,
    build_and_train,
    evaluate_classifier,
    length_edges,
    long_threshold,
    make_task,
    make_train_test,
    train_classifier,
    weight_on_evidence,
)
from utils.pooling.classifiers import SentenceClassifier, last_valid_state, mean_over_valid


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
        (torch.randn(2, 3, 6), torch.tensor([1, 4]), ValueError, "valid_lens must be in [0, keys = 3]; got values from 1 to 4"),
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
    with pytest.raises(ValueError, match=r"valid_lens must be in \[1, steps = 4\]"):
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
    with pytest.raises(ValueError, match=r"valid_lens must be in \[1, steps = 3\]"):
        model(torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="forward"):
        torch.nn.LSTM(4, 4)()  # the bug from the wild: an LSTM called with no input


def _subject_before(tokens: list[str], cue: int) -> str:
    """The noun right before the verb before ``not``: the negated sentence's subject."""
    return tokens[cue - 2]


def test_task_is_deterministic_and_only_the_animal_sentence_decides():
    first = make_task(60, max_sentences=8, seed=3)
    again = make_task(60, max_sentences=8, seed=3)
    other = make_task(60, max_sentences=8, seed=4)
    assert torch.equal(first.ids, again.ids) and torch.equal(first.labels, again.labels)
    assert torch.equal(first.distractors, again.distractors)
    assert not torch.equal(first.ids[:, :5], other.ids[:, :5])
    assert first.evidence.sum(-1).eq(3).all()
    assert not (first.evidence & first.distractors).any()
    for row in range(len(first)):
        tokens = first.tokens[row]
        deciding = first.evidence[row].nonzero().flatten().tolist()
        cue = deciding[1]
        assert tokens[cue] == "not" and _subject_before(tokens, cue) in ANIMALS
        assert (tokens[cue - 1] in ("am", "is", "are")) == bool(first.labels[row])
        # every other "not" is a distractor's: about people or things, marked three tokens wide
        others = [i for i, token in enumerate(tokens) if token == "not" and i != cue]
        assert first.distractors[row].sum() == 3 * len(others)
        for i in others:
            assert _subject_before(tokens, i) not in ANIMALS
            assert first.distractors[row, i - 1:i + 2].all()
        assert first.vocab.decode(first.ids[row, :first.valid_lens[row]]) == tokens
    assert (first.ids[torch.arange(first.ids.shape[1]) >= first.valid_lens[:, None]] == 0).all()
    assert 15 < int(first.labels.sum()) < 45


def test_distractors_carry_no_label_and_their_rate_is_a_probability():
    task = make_task(400, min_sentences=6, max_sentences=6, seed=5)
    nots = [[i for i, token in enumerate(tokens) if token == "not"] for tokens in task.tokens]
    distractor_be = [sum(tokens[i - 1] in ("am", "is", "are") for i in cues) - int(label)
                     for tokens, cues, label in zip(task.tokens, nots, task.labels.tolist(), strict=True)]
    counts = torch.tensor([len(cues) - 1 for cues in nots], dtype=torch.float)
    assert 2.0 < counts.mean() < 3.0  # 5 other sentences, each a distractor with probability 0.5
    # as many "is not" distractors in label-0 passages as in label-1 passages, per distractor
    be_share = torch.tensor(distractor_be, dtype=torch.float) / counts.clamp(min=1)
    assert abs(be_share[task.labels == 1].mean() - be_share[task.labels == 0].mean()) < 0.1
    none = make_task(50, max_sentences=6, seed=5, distractor_rate=0.0)
    assert not none.distractors.any() and all(tokens.count("not") == 1 for tokens in none.tokens)
    every = make_task(50, max_sentences=6, seed=5, distractor_rate=1.0)
    assert all(tokens.count("not") == tokens.count(".") + tokens.count("?") for tokens in every.tokens)


def test_the_deciding_sentence_can_be_kept_early():
    task = make_task(100, min_sentences=8, max_sentences=8, seed=6, evidence_within=0.25)
    for row in range(len(task)):
        cue = task.evidence[row].nonzero().flatten()[1].item()
        sentence_ends = [i for i, token in enumerate(task.tokens[row]) if token in (".", "?")]
        assert cue < sentence_ends[1]  # in one of the first two of eight sentences


def test_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_sentences"):
        make_task(5, min_sentences=3, max_sentences=2)
    with pytest.raises(ValueError, match="num_examples"):
        make_task(-1)
    with pytest.raises(ValueError, match="evidence_within"):
        make_task(5, evidence_within=0.0)
    with pytest.raises(ValueError, match="distractor_rate"):
        make_task(5, distractor_rate=1.5)
    with pytest.raises(ValueError, match="pad_to"):
        make_task(5, max_sentences=3, pad_to=2)
    padded = make_task(4, max_sentences=2, pad_to=40)
    assert padded.ids.shape == padded.evidence.shape == padded.distractors.shape == (4, 40)
    assert len(padded.subset([1, 2])) == 2


def test_weight_on_evidence():
    weights = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    evidence = torch.tensor([[True, False, False], [False, True, True]])
    torch.testing.assert_close(weight_on_evidence(weights, evidence), torch.tensor([0.5, 0.9]))
    with pytest.raises(ValueError, match="same shape"):
        weight_on_evidence(weights, evidence[:, :2])


def test_attention_learns_the_task_and_looks_at_the_evidence_not_the_distractors():
    train = make_task(600, max_sentences=3, seed=1)
    test = make_task(200, max_sentences=3, seed=2)
    torch.manual_seed(0)
    model = SentenceClassifier(len(train.vocab), 16, 16, pooling="attention")
    curve = []
    losses = train_classifier(model, train, num_updates=60, batch_size=32, lr=1e-2, every=20,
                              callback=lambda updates: curve.append(updates))
    result = evaluate_classifier(model, test)
    assert curve == [20, 40, 60]
    assert sum(losses[-10:]) < sum(losses[:10])
    assert result["accuracy"] > 0.9
    assert result["evidence_weight"] > 0.4
    assert result["distractor_weight"] < result["evidence_weight"] / 2


def test_a_recording_callback_does_not_change_the_training():
    train = make_task(200, max_sentences=3, seed=1)
    config = {"num_updates": 6, "batch_size": 16, "num_embed": 8, "num_hiddens": 8, "lr": 1e-2, "eval_every": 2}
    plain, _ = build_and_train("attention", False, train, config)
    seen = []
    recorded, _ = build_and_train("attention", False, train, config,
                                  callback=lambda updates, model: seen.append(evaluate_classifier(model, train)["accuracy"]))
    assert len(seen) == 3
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(recorded.state_dict()[name], tensor)


def test_on_long_passages_attention_beats_mean_and_last_state_and_ignores_the_distractors():
    """The chapter's claim, on a reduced version of the ``cpu`` comparison (the ``smoke`` sizes, a
    few seconds a model): the same budget for every pooling, distractors in every passage length."""
    config = {"num_train": 1000, "num_test": 400, "max_sentences": 16, "distractor_rate": 0.5,
              "evidence_within": 1.0, "num_updates": 100, "batch_size": 32, "num_embed": 16, "num_hiddens": 16,
              "lr": 1e-2}
    train, test = make_train_test(config, seed=0)
    long = test.valid_lens >= long_threshold(test)
    assert test.distractors[long].sum(-1).float().mean() > 3 * 5  # long passages hold many distractors
    results = {pooling: evaluate_classifier(build_and_train(pooling, False, train, config)[0], test)
               for pooling in ("last", "mean", "attention")}
    long_accuracy = {pooling: result["correct"][long].float().mean().item() for pooling, result in results.items()}
    # measured (LSTM, smoke sizes): last 0.53, mean 0.82, attention 1.00 on long passages
    assert long_accuracy["attention"] > 0.95
    assert long_accuracy["attention"] - long_accuracy["mean"] > 0.08
    assert long_accuracy["attention"] - long_accuracy["last"] > 0.25
    # measured: 0.67 of the weight on the 3 deciding tokens, 0.10 on all the distractors' tokens together
    assert results["attention"]["evidence_weight"] > 0.5
    assert results["attention"]["distractor_weight"] < 0.2


def test_the_cpu_record_is_the_table_the_chapter_shows_and_it_separates_the_poolings():
    """results/ch04_cpu_profile.json (written by ``python -m utils.pooling.experiment --profile cpu --out
    results``) is what the notebooks and the notes quote, and it shows the chapter's claims."""
    import json
    from pathlib import Path

    import nbformat

    from utils.pooling.experiment import format_row, settings, table_header

    root = Path(__file__).resolve().parent.parent
    record = json.loads((root / "results" / "ch04_cpu_profile.json").read_text())
    assert record["profile"] == "cpu" and record["settings"] == settings("cpu")
    rows = {(row["encoder"], row["pooling"]): row for row in record["rows"]}
    table = "\n".join([table_header(record["settings"]["num_updates"])] + [format_row(row) for row in record["rows"]])
    assert record["table"] == table
    assert table in (root / "results" / "ch04_cpu_profile.md").read_text()
    for folder in ("solutions", "chapters"):
        notebook = nbformat.read(root / folder / "04_lstm_attention_pooling.ipynb", as_version=4)
        assert any(table in cell.source for cell in notebook.cells if cell.cell_type == "markdown"), folder
    for encoder in ("LSTM", "Bi-LSTM"):
        attention, mean, last = (rows[encoder, pooling] for pooling in ("attention", "mean", "last"))
        assert attention["long_accuracy_half"] - mean["long_accuracy_half"] > 0.05
        assert attention["long_accuracy_half"] - last["long_accuracy_half"] > 0.2
        assert attention["updates_to_99_long"] < (mean["updates_to_99_long"] or 10**9)
        assert attention["evidence_weight"] > 0.8 > 0.05 > attention["distractor_weight"]
        assert [point["updates"] for point in attention["curve"]] == list(range(25, 201, 25))


def test_length_quarters_and_accuracy_by_length():
    task = make_task(200, seed=3)
    assert isinstance(task, PoolingTask) and len(task) == task.ids.shape[0] == task.labels.shape[0] == 200
    edges = length_edges(task)
    assert len(edges) == 5 and edges == sorted(edges)
    assert edges[0] == int(task.valid_lens.min()) and edges[-1] == int(task.valid_lens.max())
    assert long_threshold(task) >= edges[2]
    correct = task.valid_lens % 2 == 0  # any pattern: the function only groups and averages
    accuracies = accuracy_by_length(correct, task, edges)
    bins = torch.bucketize(task.valid_lens.float(), torch.tensor(edges[1:-1], dtype=torch.float), right=True)
    for quarter, accuracy in enumerate(accuracies):
        members = correct[bins == quarter]
        assert accuracy == pytest.approx(members.float().mean().item())
    assert sum((bins == quarter).sum().item() for quarter in range(4)) == len(task)
