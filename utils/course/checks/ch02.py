"""Chapter 02 (scaled dot-product attention): exercise checks. Hidden cases are marked ``hidden``."""

from __future__ import annotations

import math

import torch
from torch import nn

from utils.attention.dot_product import DotProductAttention
from utils.attention.masking import masked_softmax
from utils.course.checks.compare import expect, expect_attention, seeded_randn, set_linear_weight
from utils.course.checks.core import Case, Exercise, register


def reference_nadaraya_watson(x_query: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor,
                              bandwidth: float = 1.0) -> torch.Tensor:
    """``(queries,)``: attention pooling of ``y_train`` with a Gaussian kernel of width ``bandwidth``."""
    scores = -((x_query[:, None] - x_train[None, :]) / bandwidth) ** 2 / 2  # (queries, keys)
    return torch.softmax(scores, dim=-1) @ y_train


def call_attention_class(answer, args):
    """Build the learner's class with ``dropout``, switch to eval, run it: (output, weights)."""
    dropout, queries, keys, values, valid_lens = args
    module = answer(dropout)
    module.eval()
    output = module(queries, keys, values, valid_lens)
    return output, getattr(module, "attention_weights", None)


def reference_softmax_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of weights, with 0 log 0 = 0: ``(..., queries)``."""
    logs = torch.where(weights > 0, weights.log(), torch.zeros_like(weights))
    return -(weights * logs).sum(dim=-1)


class ReferenceGeneralAttention(nn.Module):
    """Luong's multiplicative "general" score, scaled: ``q · (W k) / sqrt(query_size)``."""

    def __init__(self, query_size: int, key_size: int, dropout: float):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)  # keys into the query space
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        scores = queries @ self.W(keys).transpose(1, 2) / math.sqrt(queries.shape[-1])
        self.attention_weights = masked_softmax(scores, valid_lens)  # (batch, queries, keys)
        return self.dropout(self.attention_weights) @ values  # (batch, queries, v)


def call_general_attention(answer, args):
    """Build the learner's class, give it the reference's ``W``, run it: (output, weights)."""
    query_size, key_size, dropout, seed, queries, keys, values, valid_lens = args
    module = answer(query_size, key_size, dropout)
    set_linear_weight(module, "W", seeded_randn(query_size, key_size, seed=seed) / math.sqrt(key_size),
                      why="nn.Linear(key_size, query_size) maps a key into the query space")
    module.eval()
    output = module(queries, keys, values, valid_lens)
    return output, getattr(module, "attention_weights", None)


def _general_case(batch, queries, keys, query_size, key_size, v, seed, valid_lens, dropout=0.0):
    return (query_size, key_size, dropout, seed, seeded_randn(batch, queries, query_size, seed=seed + 1),
            seeded_randn(batch, keys, key_size, seed=seed + 2), seeded_randn(batch, keys, v, seed=seed + 3), valid_lens)


def _qkv(batch: int, queries: int, keys: int, d: int, v: int, seed: int):
    return (seeded_randn(batch, queries, d, seed=seed), seeded_randn(batch, keys, d, seed=seed + 1),
            seeded_randn(batch, keys, v, seed=seed + 2))


register(
    Exercise(
        id="2.1",
        title="Nadaraya-Watson regression as attention pooling",
        points=2,
        target="nadaraya_watson",
        reference=reference_nadaraya_watson,
        hints=(
            "read it as attention: the queries are x_query, the keys x_train, the values y_train,"
            " and a pair's score is −½ ((x − x_i) / bandwidth)². A narrow kernel with far-away "
            "queries makes every score hugely negative, so do not exponentiate and normalise by "
            "hand.",
            "make a (queries, keys) table of differences by giving x_query an axis at the end and"
            " x_train one at the front; turn it into scores; take a softmax over the keys (it "
            "subtracts the row maximum for you); a matrix-vector product with y_train gives the "
            "(queries,) predictions.",
            "section 1 of this chapter computes the same weights with a bandwidth of 1.",
        ),
        cases=(
            Case("x_query=tensor([0., 1.]), x_train=tensor([0., 1., 2.]), y_train=tensor([1., 2., 3.])",
                 lambda: (torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))),
            Case("5 queries, 8 training points, bandwidth=0.5",
                 lambda: (torch.linspace(0, 5, 5), seeded_randn(8, seed=11).abs() * 3, seeded_randn(8, seed=12), 0.5)),
            Case("bandwidth=3.0 (a wide kernel: close to the mean of y_train)",
                 lambda: (torch.linspace(0, 5, 4), torch.linspace(0, 5, 10), seeded_randn(10, seed=13), 3.0),
                 hidden=True),
            Case("bandwidth=0.05 with queries far from every training point (softmax must stay stable)",
                 lambda: (torch.tensor([10.0, -7.0]), torch.linspace(0, 5, 6), seeded_randn(6, seed=14), 0.05),
                 hidden=True),
        ),
    ),
    Exercise(
        id="2.2",
        title="the entropy of attention weights",
        points=2,
        target="softmax_entropy",
        reference=reference_softmax_entropy,
        compare=expect("your entropy",
                       nan_message="your entropy contains NaN: 0 * log(0) must count as 0, not 0 * -inf"),
        hints=(
            "the entropy is −Σ α log α over the keys. A masked weight is exactly 0 and log 0 is "
            "−∞, so 0 · log 0 comes out as NaN unless you give it its limit, 0.",
            "take the logarithm only where a weight is positive and use 0 elsewhere (an "
            "element-wise choice between two tensors), multiply by the weights, sum over the last"
            " axis and negate.",
            "section 6 of this chapter measures the entropy of attention weights with a quick, "
            "approximate version; this one must be exact.",
        ),
        cases=(
            Case("uniform weights over 4 keys (entropy log 4)", lambda: (torch.full((1, 2, 4), 0.25),)),
            Case("softmax of random scores (2, 3, 5)", lambda: (torch.softmax(seeded_randn(2, 3, 5, seed=40), -1),)),
            Case("one-hot weights (entropy 0)", lambda: (torch.eye(4)[None],), hidden=True),
            Case("masked weights with zeros and a fully masked row",
                 lambda: (masked_softmax(seeded_randn(2, 3, 5, seed=41), torch.tensor([[0, 2, 5], [1, 3, 4]])),),
                 hidden=True),
        ),
    ),
    Exercise(
        id="2.3",
        title="a DotAttention module with masks, dropout and stored weights",
        points=3,
        target="DotAttention",
        reference=DotProductAttention,
        forbidden=("utils.attention.dot_product.DotProductAttention",
                   "torch.nn.functional.scaled_dot_product_attention"),
        call=call_attention_class,
        compare=expect_attention(
            nan_message="your output contains NaN (a fully masked query must give zeros)"),
        hints=(
            "scaled dot-product attention: the scores are query · key divided by √d, where d is "
            "the size of the queries and keys, taken from the data; masked keys get no weight, "
            "and a query that may see no key gives zeros.",
            "the scores must be (batch, queries, keys): which of the two operands must be "
            "transposed, and on which two axes? Pass them with valid_lens to masked_softmax, keep"
            " the result as the module's weights, apply the dropout layer made in __init__ to "
            "them, and multiply them with the values to get (batch, queries, v).",
            "section 3 of this chapter (batched attention, masks, dropout on the weights), and "
            "the fix at the end of section 5.",
        ),
        cases=(
            Case("dropout=0.0, queries (2, 3, 4), keys (2, 5, 4), values (2, 5, 6), valid_lens=None",
                 lambda: (0.0, *_qkv(2, 3, 5, 4, 6, seed=20), None)),
            Case("dropout=0.0, valid_lens=tensor([2, 5])",
                 lambda: (0.0, *_qkv(2, 3, 5, 4, 6, seed=23), torch.tensor([2, 5]))),
            Case("dropout=0.5 in eval mode, 2-D valid_lens=tensor([[1, 2, 3], [5, 4, 1]])",
                 lambda: (0.5, *_qkv(2, 3, 5, 8, 2, seed=26), torch.tensor([[1, 2, 3], [5, 4, 1]])),
                 hidden=True),
            Case("d=64 (does your scale use the size of the queries?), valid_lens=tensor([3])",
                 lambda: (0.0, *_qkv(1, 2, 4, 64, 3, seed=29), torch.tensor([3])), hidden=True),
            Case("valid_lens=tensor([0, 4]) (a fully masked sequence)",
                 lambda: (0.0, *_qkv(2, 2, 4, 4, 3, seed=32), torch.tensor([0, 4])), hidden=True),
        ),
    ),
    Exercise(
        id="2.4",
        title="a multiplicative (general) score for queries and keys of different sizes",
        points=4,
        target="GeneralAttention",
        reference=ReferenceGeneralAttention,
        call=call_general_attention,
        compare=expect_attention(
            nan_message="your output contains NaN (a fully masked query must give zeros)"),
        hints=(
            "a plain dot product needs queries and keys of the same size; here a learned matrix "
            "first carries each key into the query space, and only then is it compared with the "
            "query. The scale is the square root of the size of the two vectors you multiply, "
            "which is the query size here, not the key size.",
            "in __init__: one linear layer without bias from key_size to query_size, named W, and "
            "a dropout layer. In forward: project the keys, then proceed exactly as DotAttention "
            "did (scores of shape (batch, queries, keys), scaled, masked softmax, kept in "
            "self.attention_weights, dropout, weighted sum of the values).",
            "section 3 of this chapter (batched scores and masks) and Exercise 2.3; chapter 03, "
            "section 5, names this score (Luong's general score).",
        ),
        cases=(
            Case("query_size 6, key_size 4, queries (2, 3, 6), keys (2, 5, 4), valid_lens=None",
                 lambda: _general_case(2, 3, 5, 6, 4, 2, seed=60, valid_lens=None)),
            Case("query_size 3, key_size 8, valid_lens=tensor([2, 5])",
                 lambda: _general_case(2, 3, 5, 3, 8, 4, seed=64, valid_lens=torch.tensor([2, 5]))),
            Case("query_size 64, key_size 2 (is the scale the query size?), valid_lens=tensor([4])",
                 lambda: _general_case(1, 2, 4, 64, 2, 3, seed=68, valid_lens=torch.tensor([4])),
                 hidden=True),
            Case("dropout=0.5 in eval mode, 2-D valid_lens=tensor([[1, 0, 3], [5, 4, 2]]) "
                 "(a fully masked query)",
                 lambda: _general_case(2, 3, 5, 5, 7, 2, seed=72, dropout=0.5,
                                       valid_lens=torch.tensor([[1, 0, 3], [5, 4, 2]])),
                 hidden=True),
            Case("query_size = key_size = 4 (W is still applied), valid_lens=tensor([3, 1])",
                 lambda: _general_case(2, 2, 3, 4, 4, 2, seed=76, valid_lens=torch.tensor([3, 1])),
                 hidden=True),
        ),
    ),
)
