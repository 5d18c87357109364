"""Validation and test quality: decode a split and score it with sacreBLEU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from utils.bleu import sacre_bleu_with_signature
from utils.data import normalize, tokenize
from utils.seq2seq import decode, detokenize
from utils.validate import require_int


@dataclass
class BleuResult:
    """How well ``hypotheses`` translate ``sources``, against one and against all references.

    Per pair (in split order): ``sources``, ``hypotheses``, ``references``.
    ``bleu``: sacreBLEU with one reference per pair (an English sentence with k translations
    in the split is scored k times, once against each). ``multi_bleu``: each distinct English
    sentence scored once, against *all* its translations in the split (Tatoeba often has
    several correct ones: *Go.* -> *Va !*, *Marche.*, *Bouge !*). ``signature`` /
    ``multi_signature``: sacreBLEU's signatures of the two figures.
    """

    bleu: float
    sources: list[str]
    hypotheses: list[str]
    references: list[str]
    multi_bleu: float | None = None
    signature: str = ""
    multi_signature: str = ""

    @property
    def num_sentences(self) -> int:
        return len(self.hypotheses)

    @property
    def num_distinct_sources(self) -> int:
        return len({normalize(source) for source in self.sources})


def score_translations(sources: list[str], hypotheses: list[str], references: list[str],
                       all_references: dict[str, list[str]] | None = None) -> BleuResult:
    """Single- and multi-reference sacreBLEU of per-pair ``hypotheses`` (detokenised strings).

    The multi-reference figure takes each distinct English sentence (compared after
    ``normalize``) once, with the hypothesis of its first pair, against its references among
    these pairs, or in ``all_references`` (normalised English -> references) when given.
    """
    if not (len(sources) == len(hypotheses) == len(references)):
        raise ValueError(f"sources, hypotheses and references must pair up; got {len(sources)}, "
                         f"{len(hypotheses)} and {len(references)}")
    if not hypotheses:
        return BleuResult(0.0, [], [], [])
    single = sacre_bleu_with_signature(hypotheses, references)
    first_hypothesis: dict[str, str] = {}
    grouped: dict[str, list[str]] = {}
    for source, hypothesis, reference in zip(sources, hypotheses, references, strict=True):
        key = normalize(source)
        first_hypothesis.setdefault(key, hypothesis)
        grouped.setdefault(key, []).append(reference)
    if all_references is not None:
        grouped = {key: all_references.get(key) or refs for key, refs in grouped.items()}
    multi = sacre_bleu_with_signature(list(first_hypothesis.values()),
                                      [list(dict.fromkeys(grouped[key])) for key in first_hypothesis])
    return BleuResult(single.score, list(sources), list(hypotheses), list(references),
                      multi.score, single.signature, multi.signature)


def decode_split(model, data, split: str, *, max_sentences: int | None = None, beam_size: int = 1,
                 batch_size: int = 64, max_len: int | None = None, device=None) -> list[list[int]]:
    """Target ids decoded for the first ``max_sentences`` pairs of ``split`` (in split order)."""
    require_int("beam_size", beam_size, at_least=1)
    count = len(data.pairs[split]) if max_sentences is None else min(max_sentences, len(data.pairs[split]))
    device = next(model.parameters()).device if device is None else torch.device(device)
    bos, eos = data.tgt_vocab.bos, data.tgt_vocab.eos
    decoded: list[list[int]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, count, batch_size):
                batch = data.make_batch(split, range(start, min(start + batch_size, count))).to(device)
                ids, _ = decode(model, batch.src, batch.src_valid_lens, bos=bos, eos=eos, max_len=max_len,
                                beam_size=beam_size)
                decoded.extend(list(map(int, row)) for row in ids)
    finally:
        model.train(was_training)
    return decoded


def bleu_on_split(model, data, split: str = "valid", *, max_sentences: int | None = None,
                  beam_size: int = 1, batch_size: int = 64, device=None) -> BleuResult:
    """sacreBLEU of the model's translations of ``split`` (greedy unless ``beam_size > 1``).

    Hypotheses and references go through the same ``tokenize`` +
    ``detokenize`` (normalised, lower-case), so the score measures the model,
    not casing conventions; sacreBLEU's 13a tokenizer then scores them. With
    ``max_sentences``, the first pairs of the split are decoded; their
    multi-reference figure still uses all the split's translations of those
    English sentences.

    Used in chapter 06 §10 and chapter 07 §5; tested in tests/test_train_evaluation.py.
    """
    decoded = decode_split(model, data, split, max_sentences=max_sentences, beam_size=beam_size,
                           batch_size=batch_size, device=device)
    pairs = data.pairs[split][: len(decoded)]
    hypotheses = [detokenize(data.tgt_vocab.decode(ids)) for ids in decoded]
    references = [detokenize(tokenize(fr)) for _, fr in pairs]
    return score_translations([en for en, _ in pairs], hypotheses, references,
                              all_references=references_by_source(data.pairs[split]))


def references_by_source(pairs) -> dict[str, list[str]]:
    """Normalised English sentence -> its French translations in ``pairs`` (tokenised and
    detokenised as the hypotheses are), in order, without repeats."""
    grouped: dict[str, list[str]] = {}
    for english, french in pairs:
        references = grouped.setdefault(normalize(english), [])
        reference = detokenize(tokenize(french))
        if reference not in references:
            references.append(reference)
    return grouped


def bleu_by_length(result: BleuResult, buckets, all_references: dict[str, list[str]] | None = None) -> list[dict]:
    """sacreBLEU of ``result``'s translations grouped by source length.

    ``buckets``: ``[(low, high), ...]``, inclusive ranges of source tokens (``tokenize``:
    punctuation counts, ``<eos>`` does not). Returns one dict per bucket: ``label``
    ("5", "8-10"), ``low``, ``high``, ``sentences`` (pairs in it), ``bleu`` (single reference)
    and ``multi_bleu`` (against ``all_references``, else the bucket's own pairs); both ``None``
    for an empty bucket.

    Used in chapter 07 §8; tested in tests/test_train_evaluation.py.
    """
    lengths = [len(tokenize(source)) for source in result.sources]
    rows = []
    for low, high in buckets:
        members = [i for i, length in enumerate(lengths) if low <= length <= high]
        scored = score_translations([result.sources[i] for i in members], [result.hypotheses[i] for i in members],
                                    [result.references[i] for i in members], all_references)
        rows.append({"label": str(low) if low == high else f"{low}-{high}", "low": low, "high": high,
                     "sentences": len(members), "bleu": round(scored.bleu, 2) if members else None,
                     "multi_bleu": round(scored.multi_bleu, 2) if members else None})
    return rows
