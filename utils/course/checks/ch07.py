"""Chapter 07 (the attention translator): exercise checks. Hidden cases are the ones marked ``hidden``."""

from __future__ import annotations

import torch

from utils.course.checks.compare import compare_values, seeded_randn
from utils.course.checks.core import Case, Exercise, register
from utils.seq2seq import (
    BahdanauDecoder,
    LuongDecoder,
    Memory,
    ModelConfig,
    beam_search,
    build_model,
    length_normalizer,
)

# ---------------------------------------------------------------- 7.3 one Bahdanau step


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
    outputs = seeded_randn(batch, src_steps, hiddens, seed=seed + 1) * keep[..., None]
    state = (seeded_randn(layers, batch, hiddens, seed=seed + 2), seeded_randn(layers, batch, hiddens, seed=seed + 3))
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


# ---------------------------------------------------------------- 7.4 Luong's attentional hidden state


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
    encoder_outputs = seeded_randn(batch, src_steps, hiddens, seed=seed + 1) * keep[..., None]
    return (seeded_randn(batch, tgt_steps, hiddens, seed=seed), encoder_outputs, torch.tensor(valid_lens),
            seeded_randn(hiddens, hiddens, seed=seed + 2) / hiddens ** 0.5,
            seeded_randn(hiddens, 2 * hiddens, seed=seed + 3) / (2 * hiddens) ** 0.5)


# ---------------------------------------------------------------- 7.2 length-normalised beam scores


def reference_normalized_scores(log_probs, lengths, alpha):
    """``log p(y) / lp(|y|)`` for every hypothesis, GNMT's ``lp(n) = ((5 + n) / 6) ** alpha``."""
    divisors = torch.tensor([length_normalizer(int(n), alpha) for n in lengths], dtype=log_probs.dtype)
    return log_probs / divisors


def _beam_case(log_probs, lengths, alpha):
    return torch.tensor(log_probs, dtype=torch.float64), torch.tensor(lengths), alpha


# ---------------------------------------------------------------- 7.1 alignments from attention weights


def reference_alignment(weights, source_tokens, target_tokens):
    """For every target token, the source token it attends to most (the first of equal weights)."""
    return [(target, source_tokens[int(index)])
            for target, index in zip(target_tokens, weights.argmax(-1), strict=True)]


def _alignment_case(source, target, seed, peaks=None):
    source, target = source.split(), target.split()
    weights = torch.softmax(seeded_randn(len(target), len(source), seed=seed), -1)
    if peaks is not None:  # make row i peak at source position peaks[i]
        weights = weights * 0.2
        for row, column in enumerate(peaks):
            weights[row, column] += 0.8
    return weights, source, target


# ---------------------------------------------------------------- 7.5 one step of beam search

BOS, EOS = 1, 2  # the ids of utils.data.Vocab


def reference_beam_step(scores, log_probs, state):
    """One step of beam search: the ``K`` best of each sentence's ``K * V`` extensions, best first.

    ``scores (batch, K)`` running log-probabilities, ``log_probs (batch * K, V)`` of the next token
    from every beam row, ``state`` ``(h, c)`` each ``(layers, batch * K, H)``. Returns
    ``(new_scores (batch, K), tokens (batch, K), parents (batch, K), reordered state)``.
    """
    batch, beams = scores.shape
    vocab = log_probs.shape[-1]
    candidates = (scores.unsqueeze(-1) + log_probs.view(batch, beams, vocab)).view(batch, beams * vocab)
    top_scores, top_index = candidates.topk(beams, dim=1)  # (batch, K), best first
    parents, tokens = top_index // vocab, top_index % vocab
    rows = (torch.arange(batch, device=scores.device).unsqueeze(1) * beams + parents).flatten()
    h, c = state
    return top_scores, tokens, parents, (h.index_select(1, rows), c.index_select(1, rows))


def _beam_step_case(batch, beams, vocab, layers, hiddens, seed, first_step=False):
    generator = torch.Generator().manual_seed(seed)
    if first_step:  # only beam 0 is live: the others must not yield K copies of one token
        scores = torch.full((batch, beams), float("-inf"), dtype=torch.float64)
        scores[:, 0] = 0.0
    else:
        scores = -torch.rand(batch, beams, generator=generator, dtype=torch.float64).mul(5).sort(-1).values.flip(-1)
    log_probs = torch.randn(batch * beams, vocab, generator=generator, dtype=torch.float64).mul(2).log_softmax(-1)
    state = (torch.randn(layers, batch * beams, hiddens, generator=generator),
             torch.randn(layers, batch * beams, hiddens, generator=generator))
    return "step", scores, log_probs, state


def _toy_translator(seed):
    """A small untrained Luong model whose weights are scaled up (so the choices depend on the
    input) and that never writes <eos>, so every beam lives until ``max_len``."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig("luong", embed_size=8, num_hiddens=16, num_layers=1, dropout=0.0), 12, 10)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
        model.decoder.output.bias[EOS] -= 1e4
    return model.eval()


def _toy_sources(seed, valid_lens):
    generator = torch.Generator().manual_seed(seed + 100)
    src = torch.randint(4, 12, (len(valid_lens), max(valid_lens)), generator=generator)
    valid = torch.tensor(valid_lens)
    return src.masked_fill(torch.arange(src.shape[1]) >= valid[:, None], 0), valid


def beam_decode_with(step, model, src, src_valid_lens, beam_size, max_len):
    """Beam search written around ``step`` (an answer to 7.5) for a model that never writes <eos>:
    the best of the ``beam_size`` hypotheses after ``max_len`` steps, one list of ids per sentence.
    For such a model ``utils.seq2seq.beam_search`` returns the same (its length normalisation
    divides every hypothesis by the same number)."""
    batch = src.shape[0]
    memory = model.encode(src, src_valid_lens)
    memory = memory.index_select(torch.arange(batch).repeat_interleave(beam_size))
    state = model.decoder.init_state(memory)
    scores = torch.full((batch, beam_size), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0
    tokens = torch.full((batch * beam_size,), BOS, dtype=torch.long)
    history = torch.zeros((batch, beam_size, 0), dtype=torch.long)
    for _ in range(max_len):
        logits, state, _ = model.decoder.step(tokens, state, memory)
        scores, new_tokens, parents, state = step(scores, logits.double().log_softmax(-1), state)
        history = torch.cat([history.gather(1, parents.unsqueeze(-1).expand(-1, -1, history.shape[-1])),
                             new_tokens.unsqueeze(-1)], -1)
        tokens = new_tokens.flatten()
    best = scores.argmax(1)
    return [history[row, int(best[row])].tolist() for row in range(batch)]


def library_beam_search(seed, valid_lens, beam_size, max_len):
    """What ``utils.seq2seq.beam_search`` returns on a ``decode`` case (the tests compare it)."""
    model = _toy_translator(seed)
    src, valid = _toy_sources(seed, valid_lens)
    with torch.no_grad():
        return beam_search(model, src, valid, bos=BOS, eos=EOS, max_len=max_len, beam_size=beam_size)[0]


def call_beam_step(answer, args):
    if args[0] == "step":
        return answer(*args[1:])
    _, seed, valid_lens, beam_size, max_len = args
    model = _toy_translator(seed)
    src, valid = _toy_sources(seed, valid_lens)
    with torch.no_grad():
        return beam_decode_with(answer, model, src, valid, beam_size, max_len)


def _compare_beam_step(got, expected):
    if isinstance(expected, list):  # a whole beam search built on the answer
        for row, (got_ids, expected_ids) in enumerate(zip(got, expected, strict=True)):
            if got_ids != expected_ids:
                return (f"beam search built on your step decodes sentence {row} to {got_ids}; "
                        f"utils.seq2seq.beam_search gives {expected_ids}")
        return None
    if not isinstance(got, (tuple, list)) or len(got) != 4 or not isinstance(got[3], (tuple, list)) \
            or len(got[3]) != 2:
        return "return (new_scores, tokens, parents, (h, c))"
    names = ("new scores", "tokens", "parent beams")
    for name, got_item, expected_item in zip(names, got[:3], expected[:3], strict=True):
        problem = compare_values(got_item, expected_item, what=f"your {name}")
        if problem:
            return problem
    for name, got_item, expected_item in zip(("h", "c"), got[3], expected[3], strict=True):
        problem = compare_values(got_item, expected_item, what=f"your reordered {name}")
        if problem:
            return problem
    return None


register(
    Exercise(
        id="7.3",
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
        id="7.4",
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
        id="7.2",
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
        id="7.1",
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
    Exercise(
        id="7.5",
        title="one step of beam search",
        points=4,
        target="beam_step",
        reference=reference_beam_step,
        call=call_beam_step,
        compare=_compare_beam_step,
        hints=(
            "every (beam, token) pair of a sentence is a candidate, scored by its beam's running "
            "score plus the token's log-probability. The K best of the sentence's K × V candidates"
            " survive, best first, whichever beams they come from, and each survivor continues "
            "from its parent beam's LSTM state: a row of the same sentence in the (layers, "
            "batch · K, H) state.",
            "view the log-probabilities as (batch, K, V), add the scores with a trailing axis, "
            "flatten the last two axes and take the top K per sentence. A flat index splits into "
            "the parent beam (integer division by V) and the token (the remainder). The state rows"
            " to keep are sentence · K + parent, flattened; select them along the state's batch "
            "axis, axis 1.",
            "section 7 of this chapter describes beam search; utils.seq2seq.beam_search does the "
            "same step (with <eos> handling) inside its loop.",
        ),
        cases=(
            Case("batch 1, K=2 beams, vocabulary 5", lambda: _beam_step_case(1, 2, 5, 1, 3, seed=1)),
            Case("batch 2, K=3, vocabulary 6 (state rows of sentence 1 are 3, 4, 5)",
                 lambda: _beam_step_case(2, 3, 6, 1, 4, seed=2)),
            Case("the first step: only beam 0 is live (the others score -inf)",
                 lambda: _beam_step_case(2, 3, 7, 1, 4, seed=3, first_step=True), hidden=True),
            Case("batch 3, K=4, vocabulary 10, 2 layers", lambda: _beam_step_case(3, 4, 10, 2, 5, seed=4),
                 hidden=True),
            Case("a whole beam search (K=3, 6 steps, 3 sentences) built on your step, against "
                 "utils.seq2seq.beam_search", lambda: ("decode", 5, [4, 2, 5], 3, 6), hidden=True),
        ),
    ),
)
