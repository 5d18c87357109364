"""Translation quality: corpus BLEU from scratch (the textbook definition), and sacreBLEU.

``corpus_bleu`` works on token lists and is the definition chapter 06 builds:
clipped n-gram matches summed over the whole corpus (not averaged per sentence),
the geometric mean of the four precisions, times a brevity penalty. It gives the
same number as ``sacrebleu.corpus_bleu([" ".join(h) ...], [[" ".join(r) ...]],
tokenize="none", smooth_method=smooth)`` for tokens without spaces.

``sacre_bleu`` is the number the course reports: sacreBLEU's corpus BLEU with its
default 13a tokenizer on detokenised strings (sacrebleu is imported only there).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import NamedTuple

from utils.validate import require_int, require_one_of

SMOOTH_METHODS = ("none", "exp")

__all__ = ["corpus_bleu", "ngram_counts", "sacre_bleu", "sacre_bleu_with_signature"]


class BleuScore(NamedTuple):
    """A corpus BLEU score and what it is made of.

    ``score``: 0-100. ``precisions``: the n-gram precisions in percent, n = 1..max_order
    (as sacreBLEU reports them). ``brevity_penalty``: ``exp(1 - ref_len / hyp_len)`` when the
    hypotheses are shorter in total, else 1. ``hyp_len``/``ref_len``: total tokens.
    ``matches``/``totals``: clipped n-gram matches and hypothesis n-grams per order.
    """

    score: float
    precisions: list[float]
    brevity_penalty: float
    hyp_len: int
    ref_len: int
    matches: list[int]
    totals: list[int]


def ngram_counts(tokens: list[str], n: int) -> Counter:
    """How often each n-gram (a tuple of ``n`` tokens) occurs in ``tokens``.

    No chapter builds it; tested in tests/test_bleu.py.
    """
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _log(x: float) -> float:
    # sacreBLEU's convention: log(0) is a huge negative number, so exp(...) underflows to 0
    return math.log(x) if x > 0 else -9999999999.0


def _check_corpus(name: str, corpus) -> list[list[str]]:
    if isinstance(corpus, str) or not isinstance(corpus, (list, tuple)):
        raise TypeError(f"{name} must be a list of token lists; got {type(corpus).__name__}")
    for i, tokens in enumerate(corpus):
        if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)) \
                or not all(isinstance(t, str) for t in tokens):
            raise TypeError(
                f"{name}[{i}] must be a list of str tokens (tokenize the sentence first); "
                f"got {tokens!r:.60}"
            )
    return [list(tokens) for tokens in corpus]


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]], max_order: int = 4,
                smooth: str = "none") -> BleuScore:
    """Corpus BLEU (Papineni et al., 2002) with one reference per hypothesis.

    ``p_n = sum over sentences of clipped n-gram matches / sum of hypothesis n-grams``, where a
    hypothesis n-gram is matched at most as often as it occurs in the reference;
    ``BLEU = BP * exp(mean_n log p_n)`` (in percent), ``BP = exp(1 - r / c)`` if ``c < r``
    else 1, with ``c``/``r`` the total hypothesis/reference lengths.

    ``smooth="none"``: any ``p_n = 0`` makes BLEU 0. ``smooth="exp"`` (sacreBLEU's default,
    mteval's NIST smoothing): the k-th zero precision counts as ``1 / (2**k * total_n)`` instead.
    With either, a corpus with no n-grams of some order (every hypothesis shorter than n tokens)
    scores 0, an empty hypothesis adds 0 to the hypothesis length (lowering BP), and an empty
    corpus scores 0.

    Built in chapter 06 §8; tested in tests/test_bleu.py.
    """
    hypotheses = _check_corpus("hypotheses", hypotheses)
    references = _check_corpus("references", references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must pair up; got {len(hypotheses)} hypotheses and "
            f"{len(references)} references"
        )
    require_int("max_order", max_order, at_least=1)
    require_one_of("smooth", smooth, SMOOTH_METHODS)

    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_order + 1):
            hyp_ngrams, ref_ngrams = ngram_counts(hyp, n), ngram_counts(ref, n)
            # clipping: "the the the" against "the cat" matches "the" once, not three times
            matches[n - 1] += sum(min(count, ref_ngrams[g]) for g, count in hyp_ngrams.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)

    brevity_penalty = 1.0
    if hyp_len < ref_len:
        brevity_penalty = math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0
    precisions = [0.0] * max_order
    if not any(matches):
        return BleuScore(0.0, precisions, brevity_penalty, hyp_len, ref_len, matches, totals)
    zeros_so_far = 1.0
    for n in range(max_order):
        if totals[n] == 0:  # no hypothesis is n tokens long: this and higher orders stay 0
            break
        if matches[n] > 0:
            precisions[n] = 100.0 * matches[n] / totals[n]
        elif smooth == "exp":
            zeros_so_far *= 2
            precisions[n] = 100.0 / (zeros_so_far * totals[n])
    score = brevity_penalty * math.exp(sum(_log(p) for p in precisions) / max_order)
    return BleuScore(score, precisions, brevity_penalty, hyp_len, ref_len, matches, totals)


class SacreBleu(NamedTuple):
    """A sacreBLEU corpus score and the signature that says how it was computed.

    ``signature``: sacreBLEU's own, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``
    (``nrefs:var`` when sentences have different numbers of references). The course feeds it
    lower-cased, normalised text on both sides, so ``case:mixed`` changes nothing here.
    """

    score: float
    signature: str


def sacre_bleu_with_signature(hypotheses: list[str], references: list[str] | list[list[str]]) -> SacreBleu:
    """sacreBLEU corpus BLEU (default 13a tokenizer, exp smoothing) of detokenised strings.

    ``references``: one ``str`` per hypothesis (single reference), or one non-empty list of
    ``str`` per hypothesis (every correct translation of that sentence: multi-reference BLEU,
    where an n-gram counts as matched when any reference has it).

    No chapter builds it (attn evaluate reports it); tested in tests/test_bleu.py.
    """
    if isinstance(hypotheses, str) or not all(isinstance(s, str) for s in hypotheses):
        raise TypeError("hypotheses must be a list of str sentences")
    if isinstance(references, str):
        raise TypeError("references must be a list of str sentences (or of lists of them)")
    references = list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must pair up; got {len(hypotheses)} hypotheses and "
            f"{len(references)} references"
        )
    per_sentence = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    for index, refs in enumerate(per_sentence):
        if not refs or not all(isinstance(ref, str) for ref in refs):
            raise TypeError(f"references[{index}] must be a str or a non-empty list of str; got {references[index]!r}")
    if not hypotheses:
        raise ValueError("hypotheses is empty: BLEU of no sentences is undefined")
    import sacrebleu  # lazily: training and decoding do not need it

    # sacreBLEU wants reference *streams* (the k-th reference of every sentence); None pads a
    # sentence with fewer references than the most
    width = max((len(refs) for refs in per_sentence), default=1)
    streams = [[refs[k] if k < len(refs) else None for refs in per_sentence] for k in range(width)]
    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score(list(hypotheses), streams).score
    return SacreBleu(float(score), str(bleu.get_signature()))


def sacre_bleu(hypotheses: list[str], references: list[str] | list[list[str]]) -> float:
    """sacreBLEU corpus BLEU (0-100, default 13a tokenizer and exp smoothing) of detokenised
    strings, one reference each (or a list of references each): the number the course reports.

    Used in chapter 06 §8; tested in tests/test_bleu.py.
    """
    return sacre_bleu_with_signature(hypotheses, references).score
