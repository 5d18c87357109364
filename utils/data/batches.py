"""Token ids for every split, and length-bucketed, padded batches of them.

``TranslationData`` normalises and tokenises the pairs of a ``Splits``, builds
the source (English) and target (French) vocabularies from the *training*
split only (so valid/test words unseen in training become ``<unk>``, as they
would for a deployed model), and cuts the examples into ``Batch``es.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
import torch

from utils.data.splits import Pair, Splits, split_by_source
from utils.data.text import tokenize
from utils.data.vocab import Vocab
from utils.validate import require_int

SPLIT_NAMES = ("train", "valid", "test")
BUCKET_BATCHES = 50  # examples are sorted by length within chunks of this many batches


class Batch(NamedTuple):
    """One padded batch of a translation task (all int64).

    ``src``: ``(batch, src_steps)`` source ids, each row ending in ``<eos>``, then ``<pad>``.
    ``src_valid_lens``: ``(batch,)`` the number of source ids before the padding (``<eos>`` included).
    ``tgt_in``: ``(batch, tgt_steps)`` ``<bos>`` + target ids: the decoder's input (teacher forcing).
    ``tgt_out``: ``(batch, tgt_steps)`` target ids + ``<eos>``: what the decoder should predict.
    ``tgt_valid_lens``: ``(batch,)`` the number of ids before the padding in ``tgt_in``/``tgt_out``.
    """

    src: torch.Tensor
    src_valid_lens: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_valid_lens: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> Batch:
        """The same batch on ``device``."""
        return Batch(*(tensor.to(device, non_blocking=non_blocking) for tensor in self))


def _padded(rows: list[list[int]], *, first: int | None, last: int | None, pad: int) -> np.ndarray:
    """``(len(rows), steps)`` int64: each row with ``first`` before / ``last`` after it, then padding."""
    extra = (first is not None) + (last is not None)
    steps = max(len(row) for row in rows) + extra
    out = np.full((len(rows), steps), pad, dtype=np.int64)
    offset = int(first is not None)
    for r, row in enumerate(rows):
        if first is not None:
            out[r, 0] = first
        out[r, offset : offset + len(row)] = row
        if last is not None:
            out[r, offset + len(row)] = last
    return out


class TranslationData:
    """Tokenised, id-encoded (English -> French) splits and their batches.

    ``splits``: a ``Splits`` (train, valid, test lists of raw pairs), e.g. from
    ``split_by_source`` or ``generated_splits``. ``min_freq``: a token must
    occur this often in *train* to get its own id (2, as d2l does for fra-eng).
    ``src_vocab``/``tgt_vocab``: reuse vocabularies (e.g. from a checkpoint's
    ``Vocab.from_dict``) instead of building them.

    Attributes: ``pairs[split]`` (raw pairs), ``src_ids[split]`` /
    ``tgt_ids[split]`` (token ids without any special token), ``src_vocab``,
    ``tgt_vocab``.

    Used in chapter 06 §2; tested in tests/test_data_batches.py.
    """

    def __init__(self, splits: Splits, *, min_freq: int = 2, src_vocab: Vocab | None = None,
                 tgt_vocab: Vocab | None = None):
        if not (isinstance(splits, tuple) and len(splits) == 3):
            raise TypeError(
                f"splits must be a Splits(train, valid, test) of pair lists; got {type(splits).__name__}"
            )
        self.pairs: dict[str, list[Pair]] = dict(zip(SPLIT_NAMES, (list(s) for s in splits), strict=True))
        if not self.pairs["train"] and (src_vocab is None or tgt_vocab is None):
            raise ValueError("splits.train is empty: there is nothing to build the vocabularies from")
        src_tokens = {name: [tokenize(en) for en, _ in pairs] for name, pairs in self.pairs.items()}
        tgt_tokens = {name: [tokenize(fr) for _, fr in pairs] for name, pairs in self.pairs.items()}
        self.src_vocab = src_vocab if src_vocab is not None else Vocab(src_tokens["train"], min_freq)
        self.tgt_vocab = tgt_vocab if tgt_vocab is not None else Vocab(tgt_tokens["train"], min_freq)
        self.min_freq = min_freq
        self.src_ids = {name: [self.src_vocab.encode(t) for t in lists] for name, lists in src_tokens.items()}
        self.tgt_ids = {name: [self.tgt_vocab.encode(t) for t in lists] for name, lists in tgt_tokens.items()}

    @classmethod
    def from_pairs(cls, pairs: list[Pair], *, test_frac: float = 0.05, valid_frac: float = 0.05,
                   seed: int = 0, min_freq: int = 2) -> TranslationData:
        """Split ``pairs`` with ``split_by_source`` and build the data from the splits."""
        return cls(split_by_source(pairs, test_frac=test_frac, valid_frac=valid_frac, seed=seed),
                   min_freq=min_freq)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(pairs)}" for name, pairs in self.pairs.items())
        return (f"TranslationData({sizes}; vocab: {len(self.src_vocab)} source, "
                f"{len(self.tgt_vocab)} target tokens)")

    # ------------------------------------------------------------ examples

    def _check_split(self, split: str) -> None:
        if split not in self.pairs:
            raise ValueError(f"split must be one of {SPLIT_NAMES}; got {split!r}")

    def example_indices(self, split: str, max_len: int | None = None) -> list[int]:
        """The indices of ``split``'s examples that fit in ``max_len`` steps (all when None).

        An example fits when its source + ``<eos>`` and its target + ``<eos>``
        are at most ``max_len`` ids long; longer ones are left out, not cut
        (a cut sentence would teach the model to stop mid-sentence).
        """
        self._check_split(split)
        if max_len is None:
            return list(range(len(self.pairs[split])))
        require_int("max_len", max_len, at_least=1)
        src, tgt = self.src_ids[split], self.tgt_ids[split]
        return [i for i in range(len(src)) if len(src[i]) < max_len and len(tgt[i]) < max_len]

    def make_batch(self, split: str, indices) -> Batch:
        """The ``Batch`` of ``split``'s examples at ``indices`` (in that order)."""
        self._check_split(split)
        indices = list(indices)
        if not indices:
            raise ValueError("indices must not be empty")
        src_rows = [self.src_ids[split][i] for i in indices]
        tgt_rows = [self.tgt_ids[split][i] for i in indices]
        pad = self.src_vocab.pad
        src = _padded(src_rows, first=None, last=self.src_vocab.eos, pad=pad)
        tgt_in = _padded(tgt_rows, first=self.tgt_vocab.bos, last=None, pad=self.tgt_vocab.pad)
        tgt_out = _padded(tgt_rows, first=None, last=self.tgt_vocab.eos, pad=self.tgt_vocab.pad)
        src_valid_lens = np.fromiter((len(row) + 1 for row in src_rows), np.int64, len(src_rows))
        tgt_valid_lens = np.fromiter((len(row) + 1 for row in tgt_rows), np.int64, len(tgt_rows))
        return Batch(*(torch.from_numpy(a) for a in (src, src_valid_lens, tgt_in, tgt_out, tgt_valid_lens)))

    def batch_indices(self, split: str, batch_size: int, *, shuffle: bool, seed: int = 0,
                      epoch: int = 0, max_len: int | None = None) -> list[list[int]]:
        """The example indices of each batch ``batches`` would yield, in order."""
        require_int("batch_size", batch_size, at_least=1)
        require_int("seed", seed, at_least=0)
        require_int("epoch", epoch, at_least=0)
        indices = np.asarray(self.example_indices(split, max_len), dtype=np.int64)
        if not shuffle:
            return [indices[i : i + batch_size].tolist() for i in range(0, len(indices), batch_size)]
        # one generator per (seed, epoch): a resumed run gets the same order from the epoch number
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(indices)
        src_lens = np.fromiter((len(ids) for ids in self.src_ids[split]), np.int64,
                               len(self.src_ids[split]))
        chunk = BUCKET_BATCHES * batch_size
        batches = []
        for start in range(0, len(order), chunk):
            # similar lengths together, so a batch holds little padding
            part = order[start : start + chunk]
            part = part[np.argsort(src_lens[part], kind="stable")]
            batches.extend(part[i : i + batch_size].tolist() for i in range(0, len(part), batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def batches(self, split: str, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                max_len: int | None = None):
        """Yield the ``Batch``es of one pass over ``split``; every example exactly once.

        ``shuffle=False``: examples in split order, ``batch_size`` at a time
        (for evaluation: outputs line up with ``pairs[split]``).
        ``shuffle=True``: length bucketing. The examples are permuted, sorted
        by source length within chunks of ``50 * batch_size``, cut into batches,
        and the batches are shuffled; everything random comes from
        ``(seed, epoch)``, so the same arguments give the same batches.
        ``max_len``: leave out examples longer than that (see ``example_indices``).
        """
        for indices in self.batch_indices(split, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                          max_len=max_len):
            yield self.make_batch(split, indices)

    # ------------------------------------------------------------ helpers

    def encode_source(self, sentence: str) -> list[int]:
        """Source ids of a raw English sentence, ``<eos>`` included: one row of ``src``."""
        return self.src_vocab.encode(tokenize(sentence)) + [self.src_vocab.eos]

    def decode_target(self, ids) -> str:
        """The French text of target ids (stops at ``<eos>``, drops ``<bos>``/``<pad>``)."""
        return " ".join(self.tgt_vocab.decode(ids))

    def stats(self) -> dict:
        """Pairs per split, unique sources, vocabulary sizes, unknown rates, length counts.

        ``src_lengths``/``tgt_lengths`` map a sentence length in tokens (without
        specials) to how many sentences of all splits have it.
        """
        def unk_rate(ids_lists, unk):
            total = sum(len(ids) for ids in ids_lists)
            return round(sum(ids.count(unk) for ids in ids_lists) / total, 4) if total else 0.0

        src_lengths = Counter(len(ids) for lists in self.src_ids.values() for ids in lists)
        tgt_lengths = Counter(len(ids) for lists in self.tgt_ids.values() for ids in lists)
        return {
            "pairs": {name: len(pairs) for name, pairs in self.pairs.items()},
            "unique_sources": {name: len({en for en, _ in pairs}) for name, pairs in self.pairs.items()},
            "src_vocab_size": len(self.src_vocab),
            "tgt_vocab_size": len(self.tgt_vocab),
            "min_freq": self.min_freq,
            "src_unk_rate": {name: unk_rate(ids, self.src_vocab.unk) for name, ids in self.src_ids.items()},
            "tgt_unk_rate": {name: unk_rate(ids, self.tgt_vocab.unk) for name, ids in self.tgt_ids.items()},
            "src_lengths": dict(sorted(src_lengths.items())),
            "tgt_lengths": dict(sorted(tgt_lengths.items())),
        }
