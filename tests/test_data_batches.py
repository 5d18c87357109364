"""TranslationData and its length-bucketed batches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.data import Batch, Splits, TranslationData, Vocab, generated_splits


@pytest.fixture(scope="module")
def data():
    return TranslationData(generated_splits(1500, seed=0), min_freq=1)


def _check_batch(batch: Batch, data: TranslationData, split: str, indices: list[int]) -> None:
    src, src_valid_lens, tgt_in, tgt_out, tgt_valid_lens = batch
    size = len(indices)
    assert src.dtype == tgt_in.dtype == tgt_out.dtype == torch.int64
    assert src_valid_lens.dtype == tgt_valid_lens.dtype == torch.int64
    assert src.shape == (size, int(src_valid_lens.max()))
    assert tgt_in.shape == tgt_out.shape == (size, int(tgt_valid_lens.max()))
    assert src_valid_lens.shape == tgt_valid_lens.shape == (size,)
    src_vocab, tgt_vocab = data.src_vocab, data.tgt_vocab
    for row, index in enumerate(indices):
        src_ids, tgt_ids = data.src_ids[split][index], data.tgt_ids[split][index]
        n_src, n_tgt = int(src_valid_lens[row]), int(tgt_valid_lens[row])
        assert n_src == len(src_ids) + 1 and n_tgt == len(tgt_ids) + 1
        assert src[row, :n_src].tolist() == src_ids + [src_vocab.eos]
        assert tgt_in[row, :n_tgt].tolist() == [tgt_vocab.bos] + tgt_ids
        assert tgt_out[row, :n_tgt].tolist() == tgt_ids + [tgt_vocab.eos]
        # padding exactly beyond the valid lengths, and nowhere before
        assert (src[row, n_src:] == src_vocab.pad).all() and (src[row, :n_src] != src_vocab.pad).all()
        assert (tgt_in[row, n_tgt:] == tgt_vocab.pad).all() and (tgt_out[row, n_tgt:] == tgt_vocab.pad).all()
        assert (tgt_out[row, :n_tgt] != tgt_vocab.pad).all()


def test_vocabularies_come_from_train_only():
    splits = Splits(train=[("I see.", "Je vois.")], valid=[("I run.", "Je cours.")], test=[])
    data = TranslationData(splits, min_freq=1)
    assert "run" not in data.src_vocab and "see" in data.src_vocab
    assert data.src_ids["valid"][0] == [data.src_vocab["i"], data.src_vocab.unk, data.src_vocab["."]]
    assert data.stats()["src_unk_rate"]["valid"] == pytest.approx(1 / 3, abs=1e-3)


def test_shapes_padding_bos_eos(data):
    order = data.batch_indices("train", 32, shuffle=True, seed=0)
    for indices, batch in zip(order, data.batches("train", 32, shuffle=True, seed=0), strict=True):
        _check_batch(batch, data, "train", indices)


def test_every_example_once_per_epoch_and_same_order_for_same_seed_and_epoch(data):
    n = len(data.pairs["train"])
    for epoch in range(3):
        order = data.batch_indices("train", 16, shuffle=True, seed=4, epoch=epoch)
        assert sorted(i for batch in order for i in batch) == list(range(n))
        assert order == data.batch_indices("train", 16, shuffle=True, seed=4, epoch=epoch)
    epoch0 = data.batch_indices("train", 16, shuffle=True, seed=4, epoch=0)
    assert data.batch_indices("train", 16, shuffle=True, seed=4, epoch=1) != epoch0
    assert data.batch_indices("train", 16, shuffle=True, seed=5, epoch=0) != epoch0
    first = next(data.batches("train", 16, shuffle=True, seed=4, epoch=2))
    again = next(data.batches("train", 16, shuffle=True, seed=4, epoch=2))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_bucketing_sorts_each_batch_by_source_length_and_saves_padding(data):
    lengths = [len(ids) for ids in data.src_ids["train"]]
    bucketed = data.batch_indices("train", 16, shuffle=True, seed=0)
    for batch in bucketed:
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)

    def padded_cells(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    plain = data.batch_indices("train", 16, shuffle=False)
    assert padded_cells(bucketed) < padded_cells(plain)


def test_no_shuffle_keeps_split_order(data):
    order = data.batch_indices("test", 10, shuffle=False)
    assert [i for batch in order for i in batch] == list(range(len(data.pairs["test"])))
    assert all(len(batch) == 10 for batch in order[:-1])
    batch = next(data.batches("test", 10, shuffle=False))
    assert data.decode_target(batch.tgt_out[0]) == " ".join(
        data.tgt_vocab.decode(data.tgt_ids["test"][0]))


def test_max_len_leaves_long_examples_out(data):
    for batch in data.batches("train", 64, shuffle=True, seed=0, max_len=6):
        assert batch.src.shape[1] <= 6 and batch.tgt_in.shape[1] <= 6
    kept = data.example_indices("train", max_len=6)
    assert 0 < len(kept) < len(data.pairs["train"])


def test_from_pairs_encode_and_stats():
    pairs = [("Go.", "Va !"), ("Run!", "Cours !"), ("Run!", "Courez !"), ("Hi.", "Salut.")] * 5
    data = TranslationData.from_pairs(pairs, test_frac=0.25, valid_frac=0.25, seed=0, min_freq=1)
    stats = data.stats()
    assert sum(stats["pairs"].values()) == 20
    assert stats["src_vocab_size"] == len(data.src_vocab) and stats["tgt_vocab_size"] == len(data.tgt_vocab)
    assert sum(stats["src_lengths"].values()) == 20
    assert data.encode_source("Go.")[-1] == data.src_vocab.eos
    assert isinstance(data.src_vocab, Vocab)


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="split must be one of"):
        next(data.batches("training", 8, shuffle=False))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches("train", 0, shuffle=False))
    with pytest.raises(ValueError, match="epoch"):
        data.batch_indices("train", 8, shuffle=True, seed=0, epoch=-1)
    with pytest.raises(ValueError, match="splits.train is empty"):
        TranslationData(Splits([], [], []))


def test_batch_to_device(data):
    batch = next(data.batches("valid", 4, shuffle=False))
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and all(torch.equal(a, b) for a, b in zip(batch, moved, strict=True))


words = st.sampled_from(["a", "b", "c", "dd", "e", "f"])
sentences = st.lists(words, min_size=1, max_size=9).map(lambda ws: " ".join(ws) + ".")


@settings(max_examples=40, deadline=None)
@given(
    pairs=st.lists(st.tuples(sentences, sentences), min_size=1, max_size=60),
    batch_size=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 5),
    shuffle=st.booleans(),
)
def test_batches_property(pairs, batch_size, seed, epoch, shuffle):
    data = TranslationData(Splits(pairs, [], []), min_freq=1)
    order = data.batch_indices("train", batch_size, shuffle=shuffle, seed=seed, epoch=epoch)
    assert sorted(i for batch in order for i in batch) == list(range(len(pairs)))
    assert all(1 <= len(batch) <= batch_size for batch in order)
    for indices, batch in zip(order, data.batches("train", batch_size, shuffle=shuffle, seed=seed,
                                                  epoch=epoch), strict=True):
        _check_batch(batch, data, "train", indices)
