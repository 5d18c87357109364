"""corpus_bleu from scratch == sacreBLEU (tokenize="none"), and its edge cases."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.bleu import corpus_bleu, ngram_counts, sacre_bleu, sacre_bleu_with_signature


def reference_bleu(hyps, refs, smooth="none"):
    return sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                 tokenize="none", smooth_method=smooth)


# a small alphabet so that n-grams actually match
sentence = st.lists(st.sampled_from(["a", "b", "c", "d", "le", "chat", "."]), max_size=9)
corpus = st.integers(1, 6).flatmap(
    lambda n: st.tuples(st.lists(sentence, min_size=n, max_size=n),
                        st.lists(sentence, min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(corpus, st.sampled_from(["none", "exp"]))
def test_equals_sacrebleu_on_random_corpora(pair, smooth):
    hyps, refs = pair
    ours, theirs = corpus_bleu(hyps, refs, smooth=smooth), reference_bleu(hyps, refs, smooth)
    assert ours.score == pytest.approx(theirs.score, abs=1e-6)
    assert ours.precisions == pytest.approx(theirs.precisions, abs=1e-6)
    assert ours.brevity_penalty == pytest.approx(theirs.bp, abs=1e-9)
    assert (ours.hyp_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert ours.matches == list(theirs.counts) and ours.totals == list(theirs.totals)


def test_worked_example():
    hyp = "the the the cat sat on the mat".split()
    ref = "the cat sat on the mat".split()
    score = corpus_bleu([hyp], [ref])
    # unigrams: "the" clipped to 2 of 4, cat, sat, on, mat -> 6/8
    assert score.matches[0] == 6 and score.totals[0] == 8
    assert score.brevity_penalty == 1.0
    expected = 100 * math.exp(sum(math.log(p / 100) for p in score.precisions) / 4)
    assert score.score == pytest.approx(expected)
    assert corpus_bleu([ref], [ref]).score == pytest.approx(100.0)


def test_matches_are_summed_over_the_corpus_not_averaged():
    hyps = [["a", "b", "c", "d"], ["x"]]
    refs = [["a", "b", "c", "d"], ["y"]]
    score = corpus_bleu(hyps, refs)
    assert score.matches == [4, 3, 2, 1] and score.totals == [5, 3, 2, 1]
    assert score.score == pytest.approx(100 * (4 / 5) ** 0.25)


@pytest.mark.parametrize("smooth", ["none", "exp"])
@pytest.mark.parametrize("hyps,refs", [
    ([[]], [["a", "b"]]),                          # empty hypothesis
    ([[], ["a", "b", "c"]], [["a"], ["a", "b", "c"]]),
    ([["a", "b"]], [["a", "b"]]),                  # shorter than 4 tokens: no 3-, 4-grams
    ([["a", "b", "c"]], [["a", "b", "c", "d", "e"]]),
    ([["x", "y"]], [["a", "b"]]),                  # nothing matches
    ([["a", "x", "b", "y"]], [["a", "b"]]),        # unigrams only
    ([["a", "b", "c", "x"]], [["a", "b", "c", "d"]]),  # no 4-gram match
])
def test_edge_cases_like_sacrebleu(hyps, refs, smooth):
    ours = corpus_bleu(hyps, refs, smooth=smooth)
    assert ours.score == pytest.approx(reference_bleu(hyps, refs, smooth).score, abs=1e-6)


def test_zero_precisions_and_smoothing():
    # no 4-grams at all: 0 with either method (as sacreBLEU)
    for smooth in ("none", "exp"):
        assert corpus_bleu([["a", "b", "c"]], [["a", "b", "c"]], smooth=smooth).score == 0.0
    # a 4-gram that does not match: 0 without smoothing, 1 / (2 * 1) with exp
    hyp, ref = [["a", "b", "c", "x"]], [["a", "b", "c", "d"]]
    assert corpus_bleu(hyp, ref).score == 0.0
    smoothed = corpus_bleu(hyp, ref, smooth="exp")
    assert smoothed.precisions[3] == pytest.approx(50.0) and smoothed.score > 0


def test_empty_corpus_scores_zero():
    assert corpus_bleu([], []).score == 0.0


def test_ngram_counts():
    assert ngram_counts(["a", "b", "a", "b"], 2) == {("a", "b"): 2, ("b", "a"): 1}
    assert ngram_counts(["a"], 2) == {}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="pair up"):
        corpus_bleu([["a"]], [])
    with pytest.raises(TypeError, match=r"hypotheses\[0\]"):
        corpus_bleu(["a b"], [["a", "b"]])
    with pytest.raises(TypeError, match="references"):
        corpus_bleu([["a"]], "a")
    with pytest.raises(ValueError, match="smooth"):
        corpus_bleu([["a"]], [["a"]], smooth="floor")
    with pytest.raises(ValueError, match="max_order"):
        corpus_bleu([["a"]], [["a"]], max_order=0)
    with pytest.raises(ValueError, match="pair up"):
        sacre_bleu(["a"], [])


def test_sacre_bleu_uses_the_13a_tokenizer():
    hyps = ["Il dort.", "Je suis ici !"]
    refs = ["Il dort.", "Je suis là !"]
    assert sacre_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    # 13a splits the final period off: "dort." and "dort ." score the same
    assert sacre_bleu(["Il dort."], ["Il dort ."]) == pytest.approx(sacre_bleu(["Il dort ."], ["Il dort ."]))


def test_signature_says_how_the_score_was_computed():
    hypotheses = ["le chat dort .", "il mange une pomme ."]
    single = sacre_bleu_with_signature(hypotheses, ["le chat dort .", "elle mange une pomme ."])
    assert single.score == pytest.approx(sacre_bleu(hypotheses, ["le chat dort .", "elle mange une pomme ."]))
    assert single.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    multi = sacre_bleu_with_signature(hypotheses, [["le chat dort ."], ["elle mange une pomme .", "il mange une pomme ."]])
    assert multi.score == pytest.approx(100.0) and multi.signature.startswith("nrefs:var|")
