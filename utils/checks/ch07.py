"""Chapter 07 (the attention translator): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch

from utils.checks.compare import compare_values
from utils.checks.core import Case, Exercise, register
from utils.seq2seq import BahdanauDecoder, LuongDecoder, Memory, length_normalizer


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- 7.1 one Bahdanau step


def _bahdanau_case(vocab, embed, hiddens, layers, batch, src_steps, valid_lens, seed):
    """Plain data only (sizes, seed, token ids, lengths); ``call_bahdanau_step`` builds the rest."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, vocab, (batch,), generator=generator)
    return (vocab, embed, hiddens, layers, seed), tokens, torch.tensor(valid_lens)


def _bahdanau_inputs(sizes, tokens, valid_lens):
    vocab, embed, hiddens, layers, seed = sizes
    torch.manual_seed(seed)
    decoder = BahdanauDecoder(vocab, embed, hiddens, layers, dropout=0.0).eval()
    batch, src_steps = tokens.shape[0], int(valid_lens.max())
    keep = torch.arange(src_steps) < valid_lens[:, None]  # encoder outputs are zero on padding
    outputs = _randn(batch, src_steps, hiddens, seed=seed + 1) * keep[..., None]
    state = (_randn(layers, batch, hiddens, seed=seed + 2), _randn(layers, batch, hiddens, seed=seed + 3))
    memory = Memory(outputs, state, valid_lens)
    return decoder, memory


def call_bahdanau_step(answer, args):
    """Run ``answer(decoder, tokens, state, memory)`` on a seeded decoder in eval mode."""
    sizes, tokens, valid_lens = args
    decoder, memory = _bahdanau_inputs(sizes, tokens, valid_lens)
    with torch.no_grad():
        logits, (h, c), weights = answer(decoder, tokens.clone(), decoder.init_state(memory), memory)
    return logits, h, c, weights


def reference_bahdanau_step(decoder, tokens, state, memory):
    return decoder.step(tokens, state, memory)


def _compare_step(got, expected):
    names = ("logits", "new h", "new c", "attention weights")
    for name, got_item, expected_item in zip(names, got, expected, strict=True):
        problem = compare_values(got_item, expected_item, atol=1e-5, rtol=1e-4, what=f"your {name}")
        if problem:
            return problem
    return None


# ---------------------------------------------------------------- 7.2 Luong's attentional hidden state


def reference_luong_attentional_hidden(decoder_outputs, encoder_outputs, src_valid_lens, W_a, W_c):
    """``utils.seq2seq.LuongDecoder.attend`` with the given ``W_a`` and ``W_c``."""
    hiddens = decoder_outputs.shape[-1]
    decoder = LuongDecoder(8, 4, hiddens, 1, score="general")
    with torch.no_grad():
        decoder.W_a.weight.copy_(W_a)
        decoder.W_c.weight.copy_(W_c)
        state = (torch.zeros(1, decoder_outputs.shape[0], hiddens),) * 2
        return decoder.attend(decoder_outputs, Memory(encoder_outputs, state, src_valid_lens))


def _luong_case(batch, tgt_steps, src_steps, hiddens, valid_lens, seed):
    keep = torch.arange(src_steps) < torch.tensor(valid_lens)[:, None]
    encoder_outputs = _randn(batch, src_steps, hiddens, seed=seed + 1) * keep[..., None]
    return (_randn(batch, tgt_steps, hiddens, seed=seed), encoder_outputs, torch.tensor(valid_lens),
            _randn(hiddens, hiddens, seed=seed + 2) / hiddens ** 0.5,
            _randn(hiddens, 2 * hiddens, seed=seed + 3) / (2 * hiddens) ** 0.5)


# ---------------------------------------------------------------- 7.3 length-normalised beam scores


def reference_normalized_scores(log_probs, lengths, alpha):
    """``log p(y) / lp(|y|)`` for every hypothesis, GNMT's ``lp(n) = ((5 + n) / 6) ** alpha``."""
    divisors = torch.tensor([length_normalizer(int(n), alpha) for n in lengths], dtype=log_probs.dtype)
    return log_probs / divisors


def _beam_case(log_probs, lengths, alpha):
    return torch.tensor(log_probs, dtype=torch.float64), torch.tensor(lengths), alpha


# ---------------------------------------------------------------- 7.4 alignments from attention weights


def reference_alignment(weights, source_tokens, target_tokens):
    """For every target token, the source token it attends to most (the first of equal weights)."""
    return [(target, source_tokens[int(index)])
            for target, index in zip(target_tokens, weights.argmax(-1), strict=True)]


def _alignment_case(source, target, seed, peaks=None):
    source, target = source.split(), target.split()
    weights = torch.softmax(_randn(len(target), len(source), seed=seed), -1)
    if peaks is not None:  # make row i peak at source position peaks[i]
        weights = weights * 0.2
        for row, column in enumerate(peaks):
            weights[row, column] += 0.8
    return weights, source, target


register(
    Exercise(
        id="7.1",
        title="one step of the Bahdanau decoder",
        points=3,
        target="bahdanau_step",
        reference=reference_bahdanau_step,
        call=call_bahdanau_step,
        compare=_compare_step,
        hints=(
            "Bahdanau attends first, then steps the LSTM: the query is the previous hidden state "
            "of the decoder's top layer, the context is attention over the encoder outputs "
            "(padding masked), and the LSTM reads the embedded token together with the context.",
            "shapes: the query is (batch, 1, H), from the last layer of h; the context is (batch,"
            " 1, H); the LSTM's input is the embedding, (batch, 1, E), joined with the context "
            "along the features. Run the LSTM one step from the given state; the logits come from"
            " its single output step, and the weights are those the attention module stored, "
            "without the query axis.",
            "section 2 of this chapter takes one Bahdanau step with a model's parts.",
        ),
        cases=(
            Case("vocab 12, embed 6, hiddens 8, 1 layer, batch 2, src lengths [5, 3]",
                 lambda: _bahdanau_case(12, 6, 8, 1, 2, 5, [5, 3], seed=1)),
            Case("vocab 10, embed 4, hiddens 6, 1 layer, batch 3, src lengths [4, 4, 4]",
                 lambda: _bahdanau_case(10, 4, 6, 1, 3, 4, [4, 4, 4], seed=2)),
            Case("2 layers (the query is the top layer's state), src lengths [2, 6]",
                 lambda: _bahdanau_case(9, 5, 7, 2, 2, 6, [2, 6], seed=3), hidden=True),
            Case("batch 1, one source token", lambda: _bahdanau_case(8, 3, 4, 1, 1, 1, [1], seed=4),
                 hidden=True),
        ),
    ),
    Exercise(
        id="7.2",
        title="Luong's attentional hidden state tanh(W_c [c; h])",
        points=3,
        target="luong_attentional_hidden",
        reference=reference_luong_attentional_hidden,
        hints=(
            "Luong's general score of decoder output t and encoder output s is h_t · W_a h_s, "
            "softmaxed over the valid source steps only; the context is the weighted sum of the "
            "encoder outputs, and the result is the tanh of W_c applied to context and decoder "
            "output stacked, context first.",
            "W_a and W_c are nn.Linear-style weights: multiply by their transposes. Project the "
            "decoder outputs with W_a, then a batched product with the encoder outputs, "
            "transposed on their last two axes, gives (batch, T, S) scores; masked_softmax with "
            "src_valid_lens; the weights times the encoder outputs give (batch, T, H) contexts; "
            "join context and decoder output along the features, apply W_c and tanh. Return the "
            "weights too.",
            "section 3 of this chapter runs the same computation with a Luong decoder's layers.",
        ),
        cases=(
            Case("batch 2, 3 target steps, 4 source steps, hiddens 5, src lengths [4, 2]",
                 lambda: _luong_case(2, 3, 4, 5, [4, 2], seed=10)),
            Case("batch 1, 1 target step, 3 source steps, hiddens 4",
                 lambda: _luong_case(1, 1, 3, 4, [3], seed=20)),
            Case("batch 3, 5 target steps, 6 source steps, src lengths [1, 6, 3] (one source token)",
                 lambda: _luong_case(3, 5, 6, 8, [1, 6, 3], seed=30), hidden=True),
            Case("hiddens 16, src lengths [2, 2]", lambda: _luong_case(2, 2, 2, 16, [2, 2], seed=40),
                 hidden=True),
        ),
    ),
    Exercise(
        id="7.3",
        title="length-normalised beam scores",
        points=2,
        target="normalized_scores",
        reference=reference_normalized_scores,
        hints=(
            "GNMT's length penalty divides each summed log-probability by ((5 + length) / 6) to "
            "the power alpha; with alpha 0 the divisor is 1 and nothing changes.",
            "work on the whole (n,) tensors at once, with no loop: bring lengths to the float "
            "type of log_probs, compute every hypothesis's divisor element-wise, and divide.",
            "section 7 of this chapter gives the formula and why it is needed.",
        ),
        cases=(
            Case("log_probs [-2.0, -3.0], lengths [2, 6], alpha 0.6",
                 lambda: _beam_case([-2.0, -3.0], [2, 6], 0.6)),
            Case("alpha 0 (no normalisation)", lambda: _beam_case([-1.5, -0.5, -4.0], [3, 1, 9], 0.0)),
            Case("alpha 1.0, five hypotheses",
                 lambda: _beam_case([-0.1, -2.2, -7.5, -3.3, -5.0], [1, 4, 12, 6, 8], 1.0), hidden=True),
            Case("a zero log-probability and length 1", lambda: _beam_case([0.0, -0.7], [1, 1], 0.6),
                 hidden=True),
        ),
    ),
    Exercise(
        id="7.4",
        title="word alignments from attention weights",
        points=2,
        target="alignment",
        reference=reference_alignment,
        hints=(
            "row i of the weights is target token i's attention over the source tokens; its "
            "largest weight tells which source token it looks at most (the first one when weights"
            " tie).",
            "take the position of the maximum along the source axis for every row at once (it "
            "returns the first on ties), then pair each target token, in order, with the source "
            "token at that position: a list of (target, source) tuples.",
            "section 6 of this chapter prints the same pairs for a translated sentence.",
        ),
        cases=(
            Case("'la pomme verte .' over 'the green apple . <eos>'",
                 lambda: _alignment_case("the green apple . <eos>", "la pomme verte .", seed=1,
                                         peaks=[0, 2, 1, 3])),
            Case("random weights, 3 x 4", lambda: _alignment_case("a b c d", "x y z", seed=2)),
            Case("one target token", lambda: _alignment_case("she sleeps . <eos>", "elle", seed=3,
                                                             peaks=[0]), hidden=True),
            Case("random weights, 6 x 5", lambda: _alignment_case("i see the small cat", "je vois le petit chat .",
                                                                  seed=4), hidden=True),
        ),
    ),
)
