"""Chapter 08 (the Transformer): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from utils.attention import TransformerEncoderLayer
from utils.course.checks.compare import expect, seeded_randn
from utils.course.checks.core import Case, Exercise, register

# ---------------------------------------------------------------- 8.1 the 2017 learning-rate schedule


def reference_transformer_lr(steps, d_model, warmup):
    """``d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)`` for every step, float64."""
    steps = steps.to(torch.float64)
    return d_model ** -0.5 * torch.minimum(steps ** -0.5, steps * warmup ** -1.5)


# ---------------------------------------------------------------- 8.2 the mask of a cached decoding step


def reference_cached_causal_mask(steps: int, past: int) -> torch.Tensor:
    """``(steps, past + steps)`` bool, True where query ``i`` (at position ``past + i``) may not
    see key ``j``: ``j > past + i``."""
    return torch.ones(steps, past + steps, dtype=torch.bool).triu(diagonal=past + 1)


# ---------------------------------------------------------------- 8.3 label-smoothed cross-entropy


def reference_label_smoothed_loss(logits, targets, epsilon, pad_id):
    """Mean over the targets that are not ``pad_id``; torch's own label smoothing."""
    return F.cross_entropy(logits.double(), targets, ignore_index=pad_id, label_smoothing=epsilon).to(logits.dtype)


def _loss_case(rows, vocab, epsilon, pad_id, pads, seed, scale=2.0):
    logits = seeded_randn(rows, vocab, seed=seed, scale=scale)
    generator = torch.Generator().manual_seed(seed + 1)
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    targets[targets == pad_id] = (pad_id + 1) % vocab  # real targets are never the padding id...
    for row in pads:  # ...and these rows are padding
        targets[row] = pad_id
    return logits, targets, epsilon, pad_id


# ---------------------------------------------------------------- 8.4 a pre-LN encoder layer from its parts


def _encoder_case(d_model, heads, ffn, batch, steps, valid_lens, seed):
    """Plain data (sizes, seed, lengths); ``call_encoder_layer`` builds the layer and its input."""
    return (d_model, heads, ffn, seed), seeded_randn(batch, steps, d_model, seed=seed + 1), torch.tensor(valid_lens)


def _seeded_layer(d_model, heads, ffn, seed) -> TransformerEncoderLayer:
    torch.manual_seed(seed)
    layer = TransformerEncoderLayer(d_model, heads, ffn, dropout=0.0, norm_first=True)
    with torch.no_grad():  # LayerNorm starts as the identity: give its scale and shift values
        for norm in (layer.norm1, layer.norm2):
            norm.weight.add_(0.3 * torch.randn(d_model))
            norm.bias.add_(0.3 * torch.randn(d_model))
    return layer.eval()


def call_encoder_layer(answer, args):
    """Run ``answer(x, valid_lens, self_attn, norm1, norm2, ffn)`` with a seeded layer's parts."""
    sizes, x, valid_lens = args
    layer = _seeded_layer(*sizes)
    with torch.no_grad():
        return answer(x, valid_lens, layer.self_attn, layer.norm1, layer.norm2, layer.ffn)


def reference_encoder_layer(x, valid_lens, self_attn, norm1, norm2, ffn):
    """The library's pre-LN ``TransformerEncoderLayer`` made of the given parts."""
    d_model, heads = self_attn.embed_dim, self_attn.num_heads
    layer = TransformerEncoderLayer(d_model, heads, ffn.linear1.out_features, dropout=0.0).eval()
    layer.self_attn, layer.norm1, layer.norm2, layer.ffn = self_attn, norm1, norm2, ffn
    return layer(x, valid_lens=valid_lens)[0]


register(
    Exercise(
        id="8.1",
        title="the learning-rate schedule of the 2017 Transformer",
        points=2,
        target="transformer_lr",
        reference=reference_transformer_lr,
        compare=expect("your learning rates", atol=1e-12, rtol=1e-9),
        hints=(
            "two regimes meet at step = warmup: before it the rate grows in proportion to the "
            "step (the warm-up), after it the rate decays as one over the square root of the "
            "step; the whole curve is scaled by d_model to the power −0.5. Taking the smaller of"
            " the two expressions gives both regimes at once.",
            "convert the steps to float64 first (integer powers with negative exponents fail or "
            "round), compute the decay term and the warm-up term for every step element-wise, "
            "take their element-wise minimum and multiply by the scale: no loop, one tensor of "
            "the same shape as the steps.",
            "section 4 of this chapter says why Transformers warm up, and what happens to a "
            "post-LN stack without it.",
        ),
        cases=(
            Case("steps [1, 2, 4000, 8000], d_model 512, warmup 4000",
                 lambda: (torch.tensor([1, 2, 4000, 8000]), 512, 4000)),
            Case("steps 1 .. 10, d_model 64, warmup 4", lambda: (torch.arange(1, 11), 64, 4)),
            Case("steps [1, 1000000], d_model 256, warmup 400 (the two ends)",
                 lambda: (torch.tensor([1, 1_000_000]), 256, 400), hidden=True),
            Case("warmup 1: no warm-up, steps 1 .. 5, d_model 32",
                 lambda: (torch.arange(1, 6), 32, 1), hidden=True),
        ),
    ),
    Exercise(
        id="8.2",
        title="the causal mask of a cached decoding step",
        points=2,
        target="cached_causal_mask",
        reference=reference_cached_causal_mask,
        compare=expect("your mask"),
        hints=(
            "with a key/value cache the queries are only the newest steps: query i sits at "
            "position past + i, and the keys are all past + steps positions so far. A query may "
            "see every key at or before its own position, so the mask is not square and its "
            "diagonal is shifted by past.",
            "start from a (steps, past + steps) bool tensor of ones and keep only what lies "
            "strictly above the shifted diagonal (the upper-triangle function takes the diagonal"
            " as an argument). With past = 0 it is chapter 05's causal mask; with one step it "
            "hides nothing.",
            "section 3 of this chapter decodes one token at a time with the cache and checks it "
            "against the whole target at once.",
        ),
        cases=(
            Case("steps=3, past=0 (no cache: chapter 05's mask)", lambda: (3, 0)),
            Case("steps=2, past=3", lambda: (2, 3)),
            Case("steps=1, past=5 (one decoding step sees everything)", lambda: (1, 5), hidden=True),
            Case("steps=4, past=2", lambda: (4, 2), hidden=True),
        ),
    ),
    Exercise(
        id="8.3",
        title="label-smoothed cross-entropy",
        points=3,
        target="label_smoothed_loss",
        reference=reference_label_smoothed_loss,
        forbidden=("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss",
                   "utils.seq2seq.loss.masked_cross_entropy"),
        compare=expect("your loss"),
        hints=(
            "label smoothing trains against a softened target: 1 − epsilon on the reference token"
            " plus epsilon spread evenly over all V tokens (the reference included). The loss of "
            "a row is the cross-entropy of that distribution with the model's log-probabilities,"
            " and the rows whose target is pad_id do not count, neither in the sum nor in the "
            "mean.",
            "take the log-softmax of the logits over the vocabulary; a row's loss is (1 − "
            "epsilon) times minus the log-probability of its target, plus epsilon times minus "
            "the mean of its log-probabilities over the V tokens. Average over the rows whose "
            "target is not pad_id only (a boolean mask, summed).",
            "the training loop of chapter 07 uses label smoothing 0.1 in the cpu-real recipe; "
            "section 5 of this chapter says why the Transformer run keeps it.",
        ),
        cases=(
            Case("4 rows, vocabulary 5, epsilon 0.1, no padding",
                 lambda: _loss_case(4, 5, 0.1, 0, pads=(), seed=1)),
            Case("6 rows, vocabulary 7, epsilon 0 (plain cross-entropy), pad_id 0, row 5 padding",
                 lambda: _loss_case(6, 7, 0.0, 0, pads=(5,), seed=2)),
            Case("8 rows, vocabulary 11, epsilon 0.2, pad_id 0, rows 1, 6 and 7 padding",
                 lambda: _loss_case(8, 11, 0.2, 0, pads=(1, 6, 7), seed=3), hidden=True),
            Case("5 rows, vocabulary 50, epsilon 0.5, pad_id 3, large logits",
                 lambda: _loss_case(5, 50, 0.5, 3, pads=(0,), seed=4, scale=20.0), hidden=True),
        ),
    ),
    Exercise(
        id="8.4",
        title="a pre-LN encoder layer from its parts",
        points=4,
        target="encoder_layer",
        reference=reference_encoder_layer,
        call=call_encoder_layer,
        forbidden=("utils.attention.transformer.TransformerEncoderLayer",),
        compare=expect("your layer's output"),
        hints=(
            "a pre-LN layer normalises what each sublayer reads, never the residual stream: "
            "self-attention reads the normalised x and its output is added to x; then the "
            "feed-forward block reads the normalised sum and its output is added to it. Padded "
            "keys (at or beyond valid_lens) must get no attention.",
            "two residual steps. First: normalise x with norm1, attend with that as query, key "
            "and value, passing valid_lens to self_attn (it returns the output and the weights),"
            " add the output to x. Second: normalise the result with norm2, run ffn on it, add. "
            "Dropout is off (eval mode), so there is nothing else.",
            "section 2 of this chapter builds the same layer from the same parts and compares it"
            " with nn.TransformerEncoderLayer.",
        ),
        cases=(
            Case("d_model 8, 2 heads, ffn 16, batch 2, 4 steps, valid_lens [4, 2]",
                 lambda: _encoder_case(8, 2, 16, 2, 4, [4, 2], seed=1)),
            Case("d_model 12, 3 heads, ffn 24, batch 1, 5 steps, no padding",
                 lambda: _encoder_case(12, 3, 24, 1, 5, [5], seed=2)),
            Case("d_model 16, 4 heads, ffn 8, batch 3, 6 steps, valid_lens [1, 6, 3]",
                 lambda: _encoder_case(16, 4, 8, 3, 6, [1, 6, 3], seed=3), hidden=True),
            Case("d_model 4, 1 head, ffn 4, batch 2, 1 step",
                 lambda: _encoder_case(4, 1, 4, 2, 1, [1, 1], seed=4), hidden=True),
        ),
    ),
)
