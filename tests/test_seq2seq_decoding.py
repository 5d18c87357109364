"""Greedy and beam search: batched == one by one, beam_size=1 == greedy, exhaustive beam == brute force,
and a tiny Luong model that learns to reproduce its training pairs."""

from __future__ import annotations

import itertools

import pytest
import torch
from overfit import overfit_batch

from utils.data import TranslationData, generate_corpus
from utils.data.splits import Splits
from utils.seq2seq import (
    ModelConfig,
    Translation,
    beam_search,
    build_model,
    decode,
    default_max_len,
    greedy_decode,
    length_normalizer,
    translate,
)

BOS, EOS = 1, 2


def random_model(decoder: str, tgt_vocab: int = 13, seed: int = 0, bidirectional: bool = False):
    torch.manual_seed(seed)
    # the transformer's embeddings are its width (d_model = num_hiddens)
    config = ModelConfig(decoder, embed_size=16 if decoder == "transformer" else 8, num_hiddens=16,
                         num_layers=2, dropout=0.3, bidirectional=bidirectional, num_heads=4, ffn_hiddens=24)
    return build_model(config, 17, tgt_vocab)


def source(batch: int = 6, steps: int = 7, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    src_valid_lens = torch.randint(1, steps + 1, (batch,), generator=g)
    src_valid_lens[0] = steps
    src = torch.randint(4, 17, (batch, steps), generator=g)
    src[torch.arange(steps) >= src_valid_lens[:, None]] = 0
    return src, src_valid_lens


def teacher_forced(model, src, src_valid_lens, ids):
    """Log-probabilities and weights of the output ``ids`` (+ <eos>) for one source sentence."""
    model.eval()
    tgt_in = torch.tensor([[BOS] + ids])
    with torch.no_grad():
        logits, weights = model(src[None], src_valid_lens[None], tgt_in)
    return logits[0].log_softmax(-1), None if weights is None else weights[0]


@pytest.mark.parametrize("decoder", ["plain", "bahdanau", "luong", "transformer"])
def test_greedy_is_argmax_of_teacher_forced_forward(decoder):
    model = random_model(decoder)
    src, src_valid_lens = source()
    ids, weights = greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=9)
    assert model.training  # put back as it was
    for i, out in enumerate(ids):
        assert EOS not in out and len(out) <= 9
        log_probs, tf_weights = teacher_forced(model, src[i], src_valid_lens[i], out)
        choices = log_probs.argmax(-1).tolist()
        expected_next = choices[len(out)] if len(out) < 9 else None
        assert choices[: len(out)] == out  # every token was the argmax given the prefix
        assert expected_next in (EOS, None)  # then it stopped (or ran out of steps)
        if decoder == "plain":
            assert weights is None
        else:
            assert weights[i].shape == (len(out), int(src_valid_lens[i]))
            torch.testing.assert_close(weights[i], tf_weights[: len(out), : int(src_valid_lens[i])],
                                       atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("decoder", ["plain", "bahdanau", "luong", "transformer"])
def test_batched_equals_one_by_one(decoder):
    model = random_model(decoder)
    src, src_valid_lens = source()
    greedy_ids, _ = greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=9)
    beam_ids, _ = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=9, beam_size=3)
    for i in range(src.shape[0]):
        length = int(src_valid_lens[i])
        one = src[i : i + 1, :length], src_valid_lens[i : i + 1]
        assert greedy_decode(model, *one, bos=BOS, eos=EOS, max_len=9)[0][0] == greedy_ids[i]
        assert beam_search(model, *one, bos=BOS, eos=EOS, max_len=9, beam_size=3)[0][0] == beam_ids[i]


@pytest.mark.parametrize("decoder,seed", [("plain", 0), ("bahdanau", 1), ("luong", 2), ("luong", 3),
                                          ("transformer", 4)])
def test_beam_size_one_is_greedy(decoder, seed):
    model = random_model(decoder, seed=seed, bidirectional=seed == 3)
    src, src_valid_lens = source(batch=8, seed=seed)
    greedy = greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=12)
    beam = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=12, beam_size=1)
    assert beam[0] == greedy[0]
    if greedy[1] is None:
        assert beam[1] is None
    else:
        for a, b in zip(beam[1], greedy[1], strict=True):
            torch.testing.assert_close(a, b)


def test_beam_size_one_is_greedy_under_bf16_autocast(cpu_bf16_lstm):
    # bf16 logits tie often: both must break ties the same way (lowest token id)
    model = random_model("luong", tgt_vocab=40, seed=7)
    src, src_valid_lens = source(batch=8, seed=7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        greedy, _ = greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=12)
        beam, _ = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=12, beam_size=1)
    assert beam == greedy


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_exhaustive_beam_finds_the_best_normalised_sequence(alpha):
    """With beam_size >= vocab ** max_len nothing is pruned: beam search = brute force."""
    vocab, max_len = 5, 3
    model = random_model("luong", tgt_vocab=vocab, seed=4)
    src, src_valid_lens = source(batch=3, seed=5)
    found, weights = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=max_len,
                                 beam_size=vocab ** max_len, length_penalty=alpha)
    for i in range(3):
        best, best_score = None, float("-inf")
        for n in range(1, max_len + 1):
            for prefix in itertools.product([t for t in range(vocab) if t != EOS], repeat=n - 1):
                for last in ([EOS] if n < max_len else range(vocab)):
                    ids = [*prefix, last] if last != EOS else list(prefix)
                    log_probs, _ = teacher_forced(model, src[i], src_valid_lens[i], [*prefix, last][:-1])
                    score = sum(log_probs[t, tok].item() for t, tok in enumerate([*prefix, last]))
                    score /= length_normalizer(n, alpha)
                    if score > best_score + 1e-9:
                        best, best_score = ids, score
        assert found[i] == best
        assert weights[i].shape == (len(best), int(src_valid_lens[i]))


@pytest.mark.parametrize("decoder", ["bahdanau", "transformer"])
def test_beam_weights_belong_to_the_returned_hypothesis(decoder):
    model = random_model(decoder, seed=6)
    src, src_valid_lens = source(seed=6)
    ids, weights = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=8, beam_size=4)
    for i, out in enumerate(ids):
        _, tf_weights = teacher_forced(model, src[i], src_valid_lens[i], out)
        torch.testing.assert_close(weights[i], tf_weights[: len(out), : int(src_valid_lens[i])],
                                   atol=1e-5, rtol=1e-4)


def test_length_normalizer_is_gnmt():
    assert length_normalizer(1, 0.6) == 1.0
    assert length_normalizer(7, 0.6) == pytest.approx(2.0 ** 0.6)
    assert length_normalizer(30, 0.0) == 1.0


def test_errors_name_the_argument():
    model = random_model("luong")
    src, src_valid_lens = source()
    kwargs = dict(bos=BOS, eos=EOS, max_len=5)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, src_valid_lens, beam_size=0, **kwargs)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(model, src, src_valid_lens, length_penalty=-1.0, **kwargs)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=0)
    with pytest.raises(ValueError, match="src_valid_lens"):
        greedy_decode(model, src, src_valid_lens[:2], **kwargs)
    with pytest.raises(ValueError, match="src_valid_lens"):
        beam_search(model, src, src_valid_lens[:2], **kwargs)


@pytest.fixture(scope="module")
def overfit():
    """A tiny Luong model trained on 64 generated pairs until it knows them by heart (a few s)."""
    torch.manual_seed(0)
    data = TranslationData(Splits(generate_corpus(64, seed=0), [], []), min_freq=1)
    batch = data.make_batch("train", range(64))
    model = build_model(ModelConfig("luong", embed_size=32, num_hiddens=64, num_layers=1, dropout=0.0),
                        len(data.src_vocab), len(data.tgt_vocab))
    return model, data, batch, overfit_batch(model, batch, max_steps=300)


def test_tiny_luong_model_learns_its_training_pairs(overfit):
    model, data, batch, losses = overfit
    assert losses[0] > 4.0 and losses[-1] < 0.01, (losses[0], losses[-1])
    ids, weights = greedy_decode(model, batch.src, batch.src_valid_lens, bos=BOS, eos=EOS, max_len=20)
    assert ids == data.tgt_ids["train"]
    beam_ids, _ = beam_search(model, batch.src, batch.src_valid_lens, bos=BOS, eos=EOS, max_len=20,
                              beam_size=1)
    assert beam_ids == ids
    beam4, _ = beam_search(model, batch.src, batch.src_valid_lens, bos=BOS, eos=EOS, max_len=20,
                           beam_size=4)
    assert sum(a == b for a, b in zip(beam4, ids, strict=True)) >= 60


def test_translate_round_trip(overfit):
    model, data, _, _ = overfit
    english = [en for en, _ in data.pairs["train"][:5]]
    for beam_size in (1, 3):
        results = translate(model, english, data.src_vocab, data.tgt_vocab, beam_size=beam_size,
                            batch_size=2)
        assert len(results) == 5
        for result, ids in zip(results, data.tgt_ids["train"][:5], strict=True):
            assert isinstance(result, Translation)
            assert result.tokens == data.tgt_vocab.decode(ids)
            assert result.source_tokens[-1] == "<eos>"
            assert result.weights.shape == (len(result.tokens), len(result.source_tokens))
            assert "  " not in result.text and not result.text.endswith(" .")
    with pytest.raises(TypeError, match="sentences"):
        translate(model, "one string", data.src_vocab, data.tgt_vocab)
    with pytest.raises(ValueError, match="batch_size"):
        translate(model, english, data.src_vocab, data.tgt_vocab, batch_size=0)
    with pytest.raises(ValueError, match="beam_size"):
        translate(model, english, data.src_vocab, data.tgt_vocab, beam_size=0)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_translate_with_the_plain_decoder_has_no_weights(beam_size):
    data = TranslationData(Splits(generate_corpus(40, seed=3), [], []), min_freq=1)
    model = build_model(ModelConfig("plain", embed_size=8, num_hiddens=8, num_layers=1, dropout=0.0),
                        len(data.src_vocab), len(data.tgt_vocab))
    english = [en for en, _ in data.pairs["train"][:3]]
    results = translate(model, english, data.src_vocab, data.tgt_vocab, beam_size=beam_size, max_len=5)
    assert len(results) == 3 and all(result.weights is None for result in results)


@pytest.mark.parametrize("decoder", ["plain", "luong"])
def test_decode_is_greedy_or_beam_with_one_default_length(decoder):
    model = random_model(decoder, seed=5)
    src, src_valid_lens = source(batch=5, seed=6)
    limit = default_max_len(src_valid_lens)
    assert limit == 2 * int(src_valid_lens.max()) + 10
    assert decode(model, src, src_valid_lens, bos=BOS, eos=EOS)[0] == \
        greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=limit)[0]
    assert decode(model, src, src_valid_lens, bos=BOS, eos=EOS, beam_size=3, max_len=6)[0] == \
        beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, beam_size=3, max_len=6)[0]
    with pytest.raises(ValueError, match="beam_size must be an int >= 1; got 0"):
        decode(model, src, src_valid_lens, bos=BOS, eos=EOS, beam_size=0)


def test_decode_stops_at_the_default_length_when_eos_never_comes():
    model = random_model("luong", seed=5)
    with torch.no_grad():  # the output layer always prefers token 9, never <eos>
        model.decoder.output.weight.zero_()
        model.decoder.output.bias.fill_(-10.0)
        model.decoder.output.bias[9] = 10.0
    src, src_valid_lens = source(batch=2, seed=6)
    ids, _ = decode(model, src, src_valid_lens, bos=BOS, eos=EOS)
    assert ids == [[9] * default_max_len(src_valid_lens)] * 2


def test_expand_breaks_ties_towards_the_lower_beam_and_token():
    from utils.seq2seq.decoding import expand

    scores = torch.tensor([[0.0, -1.0]], dtype=torch.float64)  # (batch 1, K 2)
    log_probs = torch.log(torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64))
    top_scores, beam, token = expand(scores, log_probs, 3)
    # beam 0 tokens 0 and 1 tie at log 0.5; then beam 1 token 0 at -1
    assert beam.tolist() == [[0, 0, 1]] and token.tolist() == [[0, 1, 0]]
    assert top_scores[0, :2].tolist() == [torch.log(torch.tensor(0.5, dtype=torch.float64)).item()] * 2
