"""utils.training.evaluation: decoding a split and scoring it with sacreBLEU, checked against sacreBLEU."""

from __future__ import annotations

import pytest
import sacrebleu
import torch

from utils.data import TranslationData, generated_splits, tokenize
from utils.seq2seq import ModelConfig, build_model, default_max_len, detokenize, greedy_decode
from utils.training import bleu_by_length, bleu_on_split, decode_split, score_translations


@pytest.fixture(scope="module")
def data_and_model():
    data = TranslationData(generated_splits(300, seed=0))
    torch.manual_seed(0)
    model = build_model(ModelConfig(decoder="luong", embed_size=8, num_hiddens=8, num_layers=1),
                        len(data.src_vocab), len(data.tgt_vocab))
    return data, model


def test_decode_split_is_greedy_decode_of_the_first_pairs(data_and_model):
    data, model = data_and_model
    decoded = decode_split(model, data, "test", max_sentences=5, batch_size=5)
    batch = data.make_batch("test", range(5))
    ids, _ = greedy_decode(model, batch.src, batch.src_valid_lens, bos=data.tgt_vocab.bos,
                           eos=data.tgt_vocab.eos, max_len=default_max_len(batch.src_valid_lens))
    assert decoded == ids


def test_bleu_on_split_is_sacrebleu_of_its_hypotheses(data_and_model):
    data, model = data_and_model
    result = bleu_on_split(model, data, "test", max_sentences=20)
    pairs = data.pairs["test"][:20]
    assert result.num_sentences == 20 and result.sources == [en for en, _ in pairs]
    assert result.references == [detokenize(tokenize(fr)) for _, fr in pairs]
    expected = sacrebleu.corpus_bleu(result.hypotheses, [result.references]).score
    assert result.bleu == pytest.approx(expected)


def test_perfect_hypotheses_score_100_and_buckets_partition_the_pairs():
    sources = ["i am here .", "you are tall .", "we eat an apple now ."]
    references = ["je suis ici .", "tu es grand .", "nous mangeons une pomme maintenant ."]
    result = score_translations(sources, references, references)
    assert result.bleu == pytest.approx(100.0) and result.multi_bleu == pytest.approx(100.0)
    rows = bleu_by_length(result, [(1, 4), (5, 9), (10, 20)])
    assert [row["sentences"] for row in rows] == [2, 1, 0]
    assert rows[2]["bleu"] is None and rows[0]["bleu"] == pytest.approx(100.0)


def test_bad_arguments_are_named(data_and_model):
    data, model = data_and_model
    with pytest.raises(ValueError, match="beam_size must be an int >= 1; got 0"):
        decode_split(model, data, "test", beam_size=0)
    with pytest.raises(ValueError, match="must pair up"):
        score_translations(["a"], ["b", "c"], ["d"])
