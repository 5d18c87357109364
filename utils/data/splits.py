"""Train/valid/test splits by unique English sentence."""

from __future__ import annotations

import random
from typing import NamedTuple

from utils.data.grammar import generate_corpus
from utils.data.text import normalize
from utils.validate import require_number

Pair = tuple[str, str]


class Splits(NamedTuple):
    """Three lists of (English, French) pairs."""

    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]


def split_by_source(
    pairs: list[Pair], *, test_frac: float = 0.05, valid_frac: float = 0.05, seed: int = 0
) -> Splits:
    """Split ``pairs`` so that all translations of one English sentence land in the same split.

    The unique English sentences (compared after ``normalize``, so "Go." and
    "go ." are one sentence) are shuffled with ``seed``; the first
    ``round(test_frac * n)`` go to test, the next ``round(valid_frac * n)`` to
    valid, the rest to train. Every pair follows its English sentence and keeps
    its order within the split. Deterministic per seed, and independent of the
    order of ``pairs``.
    """
    require_number("test_frac", test_frac, at_least=0, below=1)
    require_number("valid_frac", valid_frac, at_least=0, below=1)
    if test_frac + valid_frac >= 1:
        raise ValueError(
            f"test_frac + valid_frac must leave something to train on; got {test_frac} + {valid_frac}"
        )
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
        raise TypeError(f"pairs must be a list of (English, French) pairs; got {type(pairs).__name__}")
    pairs = list(pairs)
    keys = []
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ValueError(f"pairs[{index}] must be an (English, French) pair of str; got {pair!r}")
        keys.append(normalize(pair[0]))
    sources = sorted(set(keys))
    random.Random(seed).shuffle(sources)
    num_test = round(test_frac * len(sources))
    num_valid = round(valid_frac * len(sources))
    split_of = dict.fromkeys(sources[:num_test], 2)
    split_of.update(dict.fromkeys(sources[num_test : num_test + num_valid], 1))
    splits: tuple[list[Pair], ...] = ([], [], [])
    for key, pair in zip(keys, pairs, strict=True):
        splits[split_of.get(key, 0)].append(tuple(pair))
    return Splits(*splits)


def generated_splits(
    num_pairs: int, seed: int = 0, test_frac: float = 0.1, valid_frac: float = 0.1, *, max_clauses: int = 1
) -> Splits:
    """``generate_corpus(num_pairs, seed, max_clauses=max_clauses)`` split by unique English sentence (same seed).

    Used in chapter 06 §1; tested in tests/test_data_grammar_splits.py.
    """
    return split_by_source(
        generate_corpus(num_pairs, seed, max_clauses=max_clauses), test_frac=test_frac, valid_frac=valid_frac,
        seed=seed,
    )
