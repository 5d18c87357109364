"""Chapter 06 (encoder-decoder without attention): exercise checks. Hidden cases are marked ``hidden``."""

from __future__ import annotations

from collections import Counter

import torch

from utils.course.checks.compare import expect
from utils.course.checks.core import Case, Exercise, register
from utils.seq2seq import ModelConfig, build_model, greedy_decode

PAD, BOS, EOS = 0, 1, 2  # the ids of utils.data.Vocab


# ---------------------------------------------------------------- 6.1 teacher forcing


def reference_teacher_forcing_io(target_ids: list[list[int]], bos: int, eos: int, pad: int):
    """``(tgt_in, tgt_out, valid_lens)``: ``<bos>`` + ids and ids + ``<eos>``, padded (as ``Batch``)."""
    steps = max(len(ids) for ids in target_ids) + 1
    tgt_in = torch.full((len(target_ids), steps), pad, dtype=torch.long)
    tgt_out = torch.full((len(target_ids), steps), pad, dtype=torch.long)
    for row, ids in enumerate(target_ids):
        tgt_in[row, : len(ids) + 1] = torch.tensor([bos, *ids])
        tgt_out[row, : len(ids) + 1] = torch.tensor([*ids, eos])
    valid_lens = torch.tensor([len(ids) + 1 for ids in target_ids])
    return tgt_in, tgt_out, valid_lens


def _compare_io(got, expected):
    names = ("tgt_in", "tgt_out", "valid_lens")
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return "return the three tensors (tgt_in, tgt_out, valid_lens)"
    for name, got_item, expected_item in zip(names, got, expected, strict=True):
        if not torch.is_tensor(got_item):
            return f"{name} should be a tensor; got {type(got_item).__name__}"
        if tuple(got_item.shape) != tuple(expected_item.shape):
            return f"{name} has shape {tuple(got_item.shape)}; expected {tuple(expected_item.shape)}"
        if not torch.equal(got_item.long(), expected_item):
            return f"{name} is {got_item.tolist()}; expected {expected_item.tolist()}"
    return None


# ---------------------------------------------------------------- 6.2 masked accuracy


def reference_masked_accuracy(logits: torch.Tensor, targets: torch.Tensor, valid_lens: torch.Tensor):
    """The fraction of the valid positions whose most likely token is the target (a 0-d tensor)."""
    keep = torch.arange(targets.shape[1])[None, :] < valid_lens[:, None]  # (batch, steps)
    correct = (logits.argmax(-1) == targets) & keep
    return correct.sum().float() / keep.sum().clamp(min=1)


def _accuracy_case(batch: int, steps: int, vocab: int, valid_lens: list[int], *, seed: int,
                   pad_right: bool = False):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, steps, vocab, generator=generator)
    targets = torch.randint(3, vocab, (batch, steps), generator=generator)
    # make about half of the valid predictions right, so the accuracy is not near 0
    right = torch.rand(batch, steps, generator=generator) < 0.5
    targets = torch.where(right, logits.argmax(-1), targets)
    valid = torch.tensor(valid_lens)
    keep = torch.arange(steps)[None, :] < valid[:, None]
    targets = targets.masked_fill(~keep, PAD)
    if pad_right:  # a model that has learned to predict <pad> after the end: padding it gets "right"
        logits[..., PAD] = torch.where(keep, logits[..., PAD], torch.full_like(logits[..., PAD], 50.0))
    return logits, targets, valid


# ---------------------------------------------------------------- 6.3 clipped n-gram matches


def reference_clipped_matches(hypothesis: list[str], references: list[list[str]], n: int):
    """``(matches, total)``: n-grams of the hypothesis, each counted at most as often as it occurs
    in the reference that has the most of it (Papineni et al., 2002)."""
    def ngrams(tokens):
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    counts = ngrams(hypothesis)
    most = Counter()
    for reference in references:
        most |= ngrams(reference)  # | keeps the larger count of each n-gram
    matches = sum(min(count, most[gram]) for gram, count in counts.items())
    return matches, sum(counts.values())


def _words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------- 6.4 batched greedy decoding


def _toy_model(seed: int, eos_bias: float):
    """A small untrained plain seq2seq. Its weights are scaled up so that the argmax depends on the
    input, and ``eos_bias`` moves ``<eos>`` up or down, so rows stop at different steps."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig("plain", embed_size=8, num_hiddens=16, num_layers=1, dropout=0.0), 12, 10)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
        model.decoder.output.bias[EOS] += eos_bias
    return model.eval()


def _toy_source(seed: int, valid_lens: list[int]):
    generator = torch.Generator().manual_seed(seed + 100)
    src = torch.randint(4, 12, (len(valid_lens), max(valid_lens)), generator=generator)
    valid = torch.tensor(valid_lens)
    src = src.masked_fill(torch.arange(src.shape[1])[None, :] >= valid[:, None], PAD)
    return src, valid


def call_greedy(answer, args):
    seed, valid_lens, max_len, eos_bias = args
    model = _toy_model(seed, eos_bias)
    src, valid = _toy_source(seed, valid_lens)
    with torch.no_grad():
        return answer(model, src, valid, BOS, EOS, max_len)


def reference_greedy(model, src, src_valid_lens, bos, eos, max_len):
    return greedy_decode(model, src, src_valid_lens, bos=bos, eos=eos, max_len=max_len)[0]


def _compare_greedy(got, expected):
    if not isinstance(got, (list, tuple)) or len(got) != len(expected):
        size = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
        return f"return one list of ids per sentence ({len(expected)} of them); got {size}"
    for row, (got_ids, expected_ids) in enumerate(zip(got, expected, strict=True)):
        got_ids = got_ids.tolist() if torch.is_tensor(got_ids) else list(got_ids)
        if got_ids != expected_ids:
            return f"sentence {row} decodes to {got_ids}; expected {expected_ids}"
    return None


# ---------------------------------------------------------------- 6.5 bridging a bidirectional encoder


def reference_bridge_directions(final: torch.Tensor, num_layers: int) -> torch.Tensor:
    """``h_n`` of a bidirectional ``nn.LSTM``, ``(num_layers * 2, batch, H)`` with the direction
    varying fastest, as ``(num_layers, batch, 2H)``: each layer's forward state, then its backward."""
    _, batch, hiddens = final.shape
    return final.view(num_layers, 2, batch, hiddens).transpose(1, 2).reshape(num_layers, batch, 2 * hiddens)


def _arange(*shape: int) -> torch.Tensor:
    return torch.arange(float(torch.Size(shape).numel())).reshape(shape)


def bidirectional_final_state(num_layers: int, batch: int, hiddens: int, seed: int) -> torch.Tensor:
    """``h_n`` of a real seeded ``nn.LSTM(bidirectional=True)`` run over random inputs."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(4, hiddens, num_layers, batch_first=True, bidirectional=True)
    with torch.no_grad():
        _, (h, _) = lstm(torch.randn(batch, 5, 4))
    return h


register(
    Exercise(
        id="6.1",
        title="the teacher-forcing shift",
        points=2,
        target="teacher_forcing_io",
        reference=reference_teacher_forcing_io,
        compare=_compare_io,
        hints=(
            "each target becomes two rows shifted by one: the decoder reads <bos> and then the "
            "ids, and must predict the ids and then <eos>. Both rows have one real step more than"
            " the sentence; the hidden cases include an empty target and rows that need no "
            "padding.",
            "the number of steps is the longest sentence's length plus 1. Start from two (batch, "
            "steps) int64 tensors full of pad; into each row's first length-plus-1 positions "
            "write <bos> followed by the ids in one, the ids followed by <eos> in the other. "
            "valid_lens is each length plus 1.",
            "section 2 of this chapter prints tgt_in and tgt_out of a real batch.",
        ),
        cases=(
            Case("target_ids=[[5, 6, 7], [8]], bos=1, eos=2, pad=0",
                 lambda: ([[5, 6, 7], [8]], 1, 2, 0)),
            Case("target_ids=[[4, 4], [9, 10, 11, 12], [3]], bos=1, eos=2, pad=0",
                 lambda: ([[4, 4], [9, 10, 11, 12], [3]], 1, 2, 0)),
            Case("rows of equal length (no padding at all)", lambda: ([[5, 6], [7, 8]], 1, 2, 0),
                 hidden=True),
            Case("an empty target (only <bos> -> <eos>)", lambda: ([[], [5, 6]], 1, 2, 0), hidden=True),
            Case("other special ids: bos=7, eos=8, pad=9", lambda: ([[1, 2, 3], [4]], 7, 8, 9),
                 hidden=True),
        ),
    ),
    Exercise(
        id="6.2",
        title="token accuracy over the valid positions only",
        points=2,
        target="masked_accuracy",
        reference=reference_masked_accuracy,
        compare=expect("your accuracy"),
        hints=(
            "only the positions before each row's valid length count, in the numerator and in the"
            " denominator: a model that predicts <pad> on the padding must get no credit for it.",
            "build the (batch, steps) mask of the valid positions; a prediction is the argmax "
            "over the vocabulary; count the positions that are both correct and valid and divide "
            "by the number of valid positions, as a 0-d float tensor.",
            "section 5 of this chapter builds the same mask for the loss.",
        ),
        cases=(
            Case("logits (2, 4, 7), valid_lens=[4, 2]",
                 lambda: _accuracy_case(2, 4, 7, [4, 2], seed=1)),
            Case("logits (3, 5, 9), valid_lens=[1, 5, 3]",
                 lambda: _accuracy_case(3, 5, 9, [1, 5, 3], seed=2)),
            Case("logits (2, 6, 8), valid_lens=[2, 3], the model predicts <pad> on every padded step",
                 lambda: _accuracy_case(2, 6, 8, [2, 3], seed=3, pad_right=True), hidden=True),
            Case("logits (4, 3, 5), nothing padded", lambda: _accuracy_case(4, 3, 5, [3, 3, 3, 3], seed=4),
                 hidden=True),
        ),
    ),
    Exercise(
        id="6.3",
        title="clipped n-gram matches against several references",
        points=3,
        target="clipped_matches",
        reference=reference_clipped_matches,
        hints=(
            "clipping: each distinct n-gram of the hypothesis matches at most as many times as it"
            " occurs in the reference that has the most of it. A hypothesis shorter than n has no"
            " n-grams at all.",
            "count the n-grams of the hypothesis and of every reference (section 8's helper does "
            "it). For each n-gram keep its largest count over the references; the matches add up,"
            " over the hypothesis n-grams, the smaller of the hypothesis count and that largest "
            "count; the total is the number of hypothesis n-grams.",
            "section 8 of this chapter clips against a single reference inside its BLEU function.",
        ),
        cases=(
            Case("'le chat le chat le chat' vs ['le chat est là'], n=1",
                 lambda: (_words("le chat le chat le chat"), [_words("le chat est là")], 1)),
            Case("'le chat le chat le chat' vs ['le chat est là', 'le chat et le chat'], n=2",
                 lambda: (_words("le chat le chat le chat"),
                          [_words("le chat est là"), _words("le chat et le chat")], 2)),
            Case("'il dort .' vs ['il dort .', 'elle dort .'], n=3 (an exact match)",
                 lambda: (_words("il dort ."), [_words("il dort ."), _words("elle dort .")], 3),
                 hidden=True),
            Case("a hypothesis shorter than n: 'oui' vs ['oui .'], n=2",
                 lambda: (_words("oui"), [_words("oui .")], 2), hidden=True),
            Case("'the the the the' vs ['the cat is on the mat', 'there is a cat on the mat'], n=1",
                 lambda: (_words("the the the the"),
                          [_words("the cat is on the mat"), _words("there is a cat on the mat")], 1),
                 hidden=True),
        ),
    ),
    Exercise(
        id="6.4",
        title="batched greedy decoding",
        points=3,
        target="greedy_batch",
        reference=reference_greedy,
        call=call_greedy,
        compare=_compare_greedy,
        hints=(
            "decode every row at once, one step at a time, feeding each row its own most likely "
            "token. Rows finish at different steps: stop only when every row has written <eos> "
            "(or after max_len steps), then cut each row before its first <eos>.",
            "start from a (batch,) tensor of <bos> ids and a (batch,) record of which rows have "
            "finished. Each step: the decoder's step, the argmax over the vocabulary as the next "
            "tokens, keep them, and mark the rows that wrote <eos>. At the end turn the kept "
            "steps into one list of ids per row and cut each at its first <eos>, if it has one.",
            "section 7 of this chapter: greedy_one decodes one sentence the same way, and the "
            "cell after it says what the batched version does.",
        ),
        cases=(
            Case("3 sentences, max_len=6, no row reaches <eos>", lambda: (1, [5, 3, 4], 6, -1.0)),
            Case("5 sentences, max_len=10, rows stop after 0, 6, 1, 0 and 1 tokens",
                 lambda: (4, [5, 3, 4, 6, 2], 10, 1.0)),
            Case("5 sentences, max_len=10, one row stops at once, the others never",
                 lambda: (3, [5, 3, 4, 6, 2], 10, -1.0), hidden=True),
            Case("5 sentences, max_len=10, one row stops after 1 token",
                 lambda: (4, [5, 3, 4, 6, 2], 10, 0.0), hidden=True),
            Case("2 sentences, max_len=1", lambda: (1, [3, 2], 1, -1.0), hidden=True),
        ),
    ),
    Exercise(
        id="6.5",
        title="bridge a bidirectional encoder to the decoder",
        points=3,
        target="bridge_directions",
        reference=reference_bridge_directions,
        compare=expect("your bridged state"),
        hints=(
            "the first axis of a bidirectional LSTM's final state holds layers and directions "
            "together, and nn.LSTM's documentation says which of the two varies fastest (the "
            "hidden cases have 2 and 3 layers). Every layer's forward and backward states go "
            "side by side along the features, forward first; rows of different sentences must "
            "never mix.",
            "separate the first axis into (num_layers, 2 directions); then the direction axis "
            "must sit just before the features, so swap it with the batch axis, and merge "
            "directions and features into one axis of 2H. A single reshape of the original "
            "tensor to the final shape mixes the batch rows.",
            "the h_n entry of torch.nn.LSTM's documentation; utils/seq2seq/encoder.py does the "
            "same for the library's bidirectional encoder before projecting to H.",
        ),
        cases=(
            Case("final = arange of shape (2, 2, 3) (1 layer, batch 2, H 3), num_layers=1",
                 lambda: (_arange(2, 2, 3), 1)),
            Case("h_n of nn.LSTM(4, 5, num_layers=1, bidirectional=True), batch 3",
                 lambda: (bidirectional_final_state(1, 3, 5, seed=1), 1)),
            Case("final = arange of shape (4, 2, 3), num_layers=2",
                 lambda: (_arange(4, 2, 3), 2), hidden=True),
            Case("h_n of a 3-layer bidirectional nn.LSTM, batch 2, H 4",
                 lambda: (bidirectional_final_state(3, 2, 4, seed=2), 3), hidden=True),
            Case("batch 1, 2 layers, H 6", lambda: (bidirectional_final_state(2, 1, 6, seed=3), 2), hidden=True),
        ),
    ),
)
