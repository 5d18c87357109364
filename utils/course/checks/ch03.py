"""Chapter 03 (additive attention): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import math

import torch
from torch.overrides import TorchFunctionMode

from utils.attention.additive import AdditiveAttention
from utils.attention.masking import masked_softmax
from utils.course.checks.compare import (
    compare_values,
    expect_attention,
    seeded_randn,
    set_linear_weight,
)
from utils.course.checks.core import Case, Exercise, register


def reference_additive_scores(queries, keys, W_q, W_k, w_v):
    """``(batch, queries, keys)``: ``w_v^T tanh(W_q q + W_k k)`` for every pair, by broadcasting."""
    features = torch.tanh((queries @ W_q.T).unsqueeze(2) + (keys @ W_k.T).unsqueeze(1))
    return features @ w_v


def _attention(key_size: int, query_size: int, num_hiddens: int, seed: int) -> AdditiveAttention:
    torch.manual_seed(seed)
    return AdditiveAttention(key_size, query_size, num_hiddens).eval()


def call_attention_class(answer, args):
    """Build the learner's class, give it the reference's weights, run it: (output, weights)."""
    sizes, seed, queries, keys, values, valid_lens = args
    module = answer(*sizes, 0.0)
    source = _attention(*sizes[:3], seed=seed)
    for name in ("W_q", "W_k", "w_v"):
        set_linear_weight(module, name, getattr(source, name).weight)
    module.eval()
    output = module(queries, keys, values, valid_lens)
    return output, getattr(module, "attention_weights", None)


class _LargestTensor(TorchFunctionMode):
    """Records the number of elements of the largest tensor any torch function returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for item in result if isinstance(result, (tuple, list)) else (result,):
            if torch.is_tensor(item):
                self.largest = max(self.largest, item.numel())
        return result


def call_chunked(answer, args):
    """Run ``answer(queries, keys, attention, chunk_size)`` and measure its largest tensor."""
    queries, keys, sizes, seed, chunk_size = args
    attention = _attention(*sizes, seed=seed)
    batch, num_queries = queries.shape[:2]
    num_keys, hiddens = keys.shape[1], attention.num_hiddens
    # one chunk's (batch, queries, chunk, hiddens) features, or the projected keys, or the scores
    bound = max(batch * num_queries * min(chunk_size, num_keys) * hiddens, batch * num_keys * hiddens,
                batch * num_queries * hiddens, batch * num_queries * num_keys)
    with torch.no_grad(), _LargestTensor() as monitor:
        scores = answer(queries, keys, attention, chunk_size)
    return scores, monitor.largest <= bound, monitor.largest, bound


def reference_chunked(queries, keys, attention, chunk_size):
    projected_queries = attention.W_q(queries).unsqueeze(2)  # (batch, queries, 1, hiddens)
    projected_keys = attention.W_k(keys)  # (batch, keys, hiddens)
    pieces = []
    for start in range(0, keys.shape[1], chunk_size):
        chunk = projected_keys[:, start:start + chunk_size].unsqueeze(1)  # (batch, 1, chunk, hiddens)
        pieces.append(attention.w_v(torch.tanh(projected_queries + chunk)).squeeze(-1))
    return torch.cat(pieces, dim=-1)


def _compare_chunked(got, expected):
    scores, within, largest, bound = got
    problem = compare_values(scores, expected[0], atol=1e-5, rtol=1e-4, what="your scores")
    if problem:
        return problem
    if not within:
        return (f"your largest intermediate tensor has {largest} elements; chunks of chunk_size keys "
                f"allow at most {bound}: never build the full (batch, queries, keys, num_hiddens) tensor")
    return None


def reference_distance_attention(queries, keys, values, valid_lens=None):
    """``(batch, queries, v)``: attention with scores ``-||q - k||^2 / sqrt(d)``, in O(b q k) memory.

    ``||q - k||^2 = ||q||^2 - 2 q.k + ||k||^2``; the ``||q||^2`` term is the same for every key of a
    query, so the softmax ignores it.
    """
    cross = queries @ keys.transpose(1, 2)  # (batch, queries, keys)
    key_norms = (keys**2).sum(-1).unsqueeze(1)  # (batch, 1, keys)
    scores = (2 * cross - key_norms) / math.sqrt(queries.shape[-1])
    return masked_softmax(scores, valid_lens) @ values


def call_distance(answer, args):
    """Run ``answer(queries, keys, values, valid_lens)`` and measure its largest tensor."""
    queries, keys, values, valid_lens = args
    (batch, num_queries, d), num_keys, v = queries.shape, keys.shape[1], values.shape[-1]
    # the scores, or one of the inputs or outputs: never the (batch, queries, keys, d) differences
    bound = max(batch * num_queries * num_keys, batch * num_keys * max(d, v), batch * num_queries * max(d, v))
    with torch.no_grad(), _LargestTensor() as monitor:
        output = answer(queries, keys, values, valid_lens)
    return output, monitor.largest <= bound, monitor.largest, bound


def _compare_distance(got, expected):
    output, within, largest, bound = got
    if torch.is_tensor(output) and torch.isnan(output).any():
        return "your output contains NaN (a fully masked query must give zeros)"
    problem = compare_values(output, expected[0], atol=1e-4, rtol=1e-4, what="your output")
    if problem:
        return problem
    if not within:
        return (f"your largest intermediate tensor has {largest} elements, more than the {bound} of the "
                f"scores, the inputs and the output: never build the (batch, queries, keys, d) differences")
    return None


def _distance_case(batch, queries, keys, d, v, seed, valid_lens=None, scale=1.0):
    return (seeded_randn(batch, queries, d, seed=seed) * scale, seeded_randn(batch, keys, d, seed=seed + 1) * scale,
            seeded_randn(batch, keys, v, seed=seed + 2), valid_lens)


def _scores_case(batch, queries, keys, query_size, key_size, hiddens, seed):
    return (seeded_randn(batch, queries, query_size, seed=seed), seeded_randn(batch, keys, key_size, seed=seed + 1),
            seeded_randn(hiddens, query_size, seed=seed + 2), seeded_randn(hiddens, key_size, seed=seed + 3),
            seeded_randn(hiddens, seed=seed + 4))


def _class_case(sizes, batch, queries, keys, v, seed, valid_lens):
    key_size, query_size, _ = sizes
    return (sizes, seed, seeded_randn(batch, queries, query_size, seed=seed),
            seeded_randn(batch, keys, key_size, seed=seed + 1), seeded_randn(batch, keys, v, seed=seed + 2), valid_lens)


def _chunk_case(batch, queries, keys, sizes, seed, chunk_size):
    key_size, query_size, _ = sizes
    return (seeded_randn(batch, queries, query_size, seed=seed), seeded_randn(batch, keys, key_size, seed=seed + 1),
            sizes, seed, chunk_size)


register(
    Exercise(
        id="3.1",
        title="additive scores by broadcasting",
        points=2,
        target="additive_scores",
        reference=reference_additive_scores,
        hints=(
            "score every query against every key at once: project the queries and the keys into "
            "the same hidden space of size h first (once each) and only then pair them up. Try a "
            "case where the numbers of queries and keys differ.",
            "W_q and W_k are laid out like nn.Linear weights, (h, d), so a projection multiplies "
            "by the transposed matrix. Give the projected queries a new axis at position 2 and "
            "the projected keys one at position 1: their sum is (batch, queries, keys, h); tanh, "
            "then a product with w_v over the last axis leaves (batch, queries, keys).",
            "section 2 of this chapter does this with nn.Linear layers; section 6 shows what "
            "happens when the two new axes are swapped.",
        ),
        cases=(
            Case("queries (1, 2, 3), keys (1, 4, 3), num_hiddens 5",
                 lambda: _scores_case(1, 2, 4, 3, 3, 5, seed=1)),
            Case("queries (2, 3, 6), keys (2, 5, 4) (different sizes), num_hiddens 8",
                 lambda: _scores_case(2, 3, 5, 6, 4, 8, seed=6)),
            Case("one query against 7 keys: queries (3, 1, 20), keys (3, 7, 2)",
                 lambda: _scores_case(3, 1, 7, 20, 2, 4, seed=11), hidden=True),
            Case("queries (2, 4, 5), keys (2, 3, 5) (more queries than keys)",
                 lambda: _scores_case(2, 4, 3, 5, 5, 6, seed=16), hidden=True),
        ),
    ),
    Exercise(
        id="3.2",
        title="an MLPAttention module",
        points=3,
        target="MLPAttention",
        reference=AdditiveAttention,
        forbidden=("utils.attention.additive.AdditiveAttention",),
        call=call_attention_class,
        compare=expect_attention(),
        hints=(
            "the layer is section 1's scoring MLP applied to every (query, key) pair, followed by"
            " what chapter 02's DotAttention did with its scores: masked softmax, dropout on the "
            "weights, a weighted sum of the values.",
            "in __init__: three linear layers without bias, W_q from query_size and W_k from "
            "key_size to num_hiddens, w_v from num_hiddens to 1, and a dropout layer. In forward:"
            " project, broadcast queries against keys into (batch, queries, keys, num_hiddens), "
            "tanh, w_v, and drop the last axis (of size 1) to get the (batch, queries, keys) "
            "scores; the rest is as in Exercise 2.3.",
            "section 2 of this chapter builds these scores with the same three layers, and "
            "section 3 describes the whole layer.",
        ),
        cases=(
            Case("key_size 4, query_size 6, num_hiddens 8, valid_lens=None",
                 lambda: _class_case((4, 6, 8), 2, 3, 5, 2, seed=21, valid_lens=None)),
            Case("valid_lens=tensor([2, 5])",
                 lambda: _class_case((4, 6, 8), 2, 3, 5, 2, seed=24, valid_lens=torch.tensor([2, 5]))),
            Case("2-D valid_lens=tensor([[1, 2], [3, 0]]) (a fully masked query)",
                 lambda: _class_case((3, 3, 4), 2, 2, 3, 4, seed=27, valid_lens=torch.tensor([[1, 2], [3, 0]])),
                 hidden=True),
            Case("key_size 2, query_size 20, num_hiddens 8, valid_lens=tensor([2, 6])",
                 lambda: _class_case((2, 20, 8), 2, 1, 10, 4, seed=30, valid_lens=torch.tensor([2, 6])),
                 hidden=True),
        ),
    ),
    Exercise(
        id="3.3",
        title="additive scores in chunks of keys (bounded memory)",
        points=3,
        target="chunked_additive_scores",
        reference=reference_chunked,
        call=call_chunked,
        compare=_compare_chunked,
        hints=(
            "the expensive tensor is the (batch, queries, keys, num_hiddens) features; projecting"
            " the queries and the keys is cheap. Build the features for at most chunk_size keys "
            "at a time: the scores of consecutive slices of keys, side by side, are the full "
            "scores.",
            "project all queries and all keys once with the layer's W_q and W_k. Loop over the "
            "key positions in steps of chunk_size; for each slice, broadcast the projected "
            "queries against the slice's projected keys, tanh, w_v, and drop the last axis: "
            "(batch, queries, slice). Join the pieces along the keys axis; the last slice may be "
            "shorter.",
            "section 5 of this chapter explains where the memory goes; section 2 shows the "
            "broadcasting you apply to each slice.",
        ),
        cases=(
            Case("queries (2, 3, 4), keys (2, 10, 4), num_hiddens 8, chunk_size 4",
                 lambda: _chunk_case(2, 3, 10, (4, 4, 8), seed=41, chunk_size=4)),
            Case("keys of size 3, queries of size 5, chunk_size 2",
                 lambda: _chunk_case(2, 2, 6, (3, 5, 8), seed=44, chunk_size=2)),
            Case("chunk_size 1 (one key at a time)",
                 lambda: _chunk_case(1, 4, 5, (4, 4, 6), seed=47, chunk_size=1), hidden=True),
            Case("chunk_size 16 larger than the 7 keys",
                 lambda: _chunk_case(2, 3, 7, (4, 4, 8), seed=50, chunk_size=16), hidden=True),
            Case("13 keys in chunks of 5 (the last chunk is shorter)",
                 lambda: _chunk_case(2, 3, 13, (4, 6, 8), seed=53, chunk_size=5), hidden=True),
        ),
    ),
    Exercise(
        id="3.4",
        title="a distance score without the (batch, queries, keys, d) tensor",
        points=4,
        target="distance_attention",
        reference=reference_distance_attention,
        call=call_distance,
        compare=_compare_distance,
        hints=(
            "the score is −‖q − k‖² / √d: the nearer the key, the higher the score. Subtracting "
            "every key from every query builds a (batch, queries, keys, d) tensor, the same "
            "memory problem as section 5's additive features; expand the square instead, so that "
            "the only (batch, queries, keys) work is one matrix product.",
            "‖q − k‖² = ‖q‖² − 2 q·k + ‖k‖². The cross term is a batched matrix product of the "
            "queries with the transposed keys; the squared norms of the keys are one number per "
            "key, broadcast over the queries; the ‖q‖² term is the same for every key of a query, "
            "so the softmax ignores it (chapter 02, section 2). Divide by √d, then masked softmax "
            "and a weighted sum of the values.",
            "chapter 02, section 2 expands the Gaussian score the same way; section 5 of this "
            "chapter shows where the memory of a (batch, queries, keys, h) tensor goes.",
        ),
        cases=(
            Case("queries (2, 3, 4), keys (2, 5, 4), values (2, 5, 3), valid_lens=None",
                 lambda: _distance_case(2, 3, 5, 4, 3, seed=61)),
            Case("valid_lens=tensor([2, 5])",
                 lambda: _distance_case(2, 3, 5, 4, 3, seed=64, valid_lens=torch.tensor([2, 5]))),
            Case("d=64 (is the scale √d?), queries (1, 4, 64), keys (1, 6, 64)",
                 lambda: _distance_case(1, 4, 6, 64, 2, seed=67, valid_lens=torch.tensor([6])), hidden=True),
            Case("2-D valid_lens=tensor([[1, 0], [3, 2]]) (a fully masked query)",
                 lambda: _distance_case(2, 2, 3, 5, 4, seed=70, valid_lens=torch.tensor([[1, 0], [3, 2]])),
                 hidden=True),
            Case("queries and keys scaled by 30 (distances in the thousands), valid_lens=tensor([7, 4])",
                 lambda: _distance_case(2, 3, 7, 8, 2, seed=73, valid_lens=torch.tensor([7, 4]), scale=30.0),
                 hidden=True),
        ),
    ),
)
