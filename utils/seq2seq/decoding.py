"""Decoding a trained model: batched greedy search, batched beam search, and ``decode``, which
picks one of them (``beam_size=1``: greedy) with the course's one default length limit.

Both return ``(token_ids, weights)``: per sentence, the generated token ids *without*
``<bos>``/``<eos>``, and per sentence the attention weights of those tokens, a
``(out_len, src_valid_len)`` float32 CPU tensor whose row ``i`` is what output token ``i``
looked at; ``weights`` is ``None`` (not a list) for the plain decoder, which has none.
The model is put in eval mode while decoding (dropout off) and put back afterwards.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from utils.seq2seq.encoder import require_source
from utils.validate import require_int, require_number


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _prepare(model, src, src_valid_lens, bos, eos, max_len):
    require_source(src, src_valid_lens)
    require_int("bos", bos, at_least=0)
    require_int("eos", eos, at_least=0)
    require_int("max_len", max_len, at_least=1)
    device = next(model.parameters()).device
    return src.to(device), src_valid_lens.to(device)


def _trimmed(weights: torch.Tensor | None, out_len: int, src_len: int):
    """``weights (steps, src_steps)`` -> ``(out_len, src_len)`` float32 on the CPU."""
    return None if weights is None else weights[:out_len, :src_len].float().cpu()


def greedy_decode(model, src: torch.Tensor, src_valid_lens: torch.Tensor, *, bos: int, eos: int,
                  max_len: int):
    """Batched greedy decoding: at every step, feed back the most likely token.

    Args:
        src: ``(batch, src_steps)`` source ids; ``src_valid_lens``: ``(batch,)``.
        bos, eos: the target vocabulary's ``<bos>``/``<eos>`` ids. max_len: at most this many
            steps; a sentence without ``<eos>`` by then is returned with ``max_len`` tokens.

    Returns:
        ``(token_ids, weights)``: ``list[list[int]]`` and ``list[Tensor (out_len, src_valid_len)]``
        (``None`` for the plain decoder), one entry per sentence.

    Built in chapter 06 §7; tested in tests/test_seq2seq_decoding.py.
    """
    src, src_valid_lens = _prepare(model, src, src_valid_lens, bos, eos, max_len)
    batch = src.shape[0]
    with _eval_mode(model):
        memory = model.encode(src, src_valid_lens)
        state = model.decoder.init_state(memory)
        tokens = torch.full((batch,), bos, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        step_tokens, step_weights = [], []
        for _ in range(max_len):
            logits, state, weights = model.decoder.step(tokens, state, memory)  # (batch, vocab)
            tokens = logits.argmax(-1)  # (batch,), the first index among ties
            step_tokens.append(tokens)
            step_weights.append(weights)  # (batch, src_steps) or None
            finished |= tokens == eos
            if bool(finished.all()):
                break
    rows = torch.stack(step_tokens, 1).tolist()  # (batch, steps)
    all_weights = None if step_weights[0] is None else torch.stack(step_weights, 1)  # (batch, steps, S)
    out_ids, out_weights = [], []
    for i, row in enumerate(rows):
        ids = row[: row.index(eos)] if eos in row else row
        out_ids.append(ids)
        out_weights.append(None if all_weights is None
                                   else _trimmed(all_weights[i], len(ids), int(src_valid_lens[i])))
    return out_ids, None if all_weights is None else out_weights


def length_normalizer(length: int, alpha: float) -> float:
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016); 1 when alpha = 0.

    Used in chapter 07 §Exercises; tested in tests/test_seq2seq_decoding.py.
    """
    return ((5.0 + length) / 6.0) ** alpha


def expand(scores: torch.Tensor, log_probs: torch.Tensor, num_candidates: int):
    """The best extensions of every sentence's beams: top-k over beam × vocabulary.

    ``scores``: ``(batch, K)`` summed log-probabilities of the live hypotheses (``-inf`` for a
    beam that is not live); ``log_probs``: ``(batch, K, vocab)`` of the next token.
    Returns ``(scores, beam, token)``, each ``(batch, num_candidates)``, best first; among equal
    scores the lower flat index ``beam * vocab + token`` comes first (what ``argmax`` does), so
    one beam expands exactly like greedy decoding.
    """
    batch, K, vocab = log_probs.shape
    candidates = (scores.unsqueeze(-1) + log_probs).view(batch, K * vocab)
    top_scores, top_index = candidates.topk(min(num_candidates, K * vocab), dim=1)
    by_index = top_index.sort(dim=1).indices  # sort by index, then stably by score
    top_scores, top_index = top_scores.gather(1, by_index), top_index.gather(1, by_index)
    order = top_scores.sort(dim=1, descending=True, stable=True).indices
    top_scores, top_index = top_scores.gather(1, order), top_index.gather(1, order)
    return top_scores, top_index // vocab, top_index % vocab


class _Beams:
    """The search state of ``batch`` sentences with ``K`` beams each.

    ``scores (batch, K)`` float64; ``history (batch, K, t)`` the tokens so far; ``weight_history
    (batch, K, t, src_steps)`` their attention rows (``None`` before the first step and for the
    plain decoder); ``finished[b]`` the finished hypotheses ``(normalised score, ids, weights)``
    of sentence ``b``; ``done[b]`` once it has ``K`` of them.
    """

    def __init__(self, batch: int, K: int, device: torch.device, length_penalty: float):
        self.K, self.length_penalty = K, length_penalty
        # only beam 0 is live at the start, so the first step does not pick K copies of one token
        self.scores = torch.full((batch, K), float("-inf"), dtype=torch.float64, device=device)
        self.scores[:, 0] = 0.0
        self.history = torch.zeros((batch, K, 0), dtype=torch.long, device=device)
        self.weight_history = None
        self.finished: list[list[tuple[float, list[int], torch.Tensor | None]]] = [[] for _ in range(batch)]
        self.done = [False] * batch

    def collect_finished(self, top_scores, top_beam, top_token, weights, eos: int, length: int) -> None:
        """Keep the ``<eos>`` extensions ranked among a sentence's first K as finished hypotheses.

        ``weights``: ``(batch, K, src_steps)`` of this step, or ``None``; ``length``: tokens
        including ``<eos>``, for the length penalty.
        """
        K = self.K
        ranked_eos = ((top_token[:, :K] == eos) & torch.isfinite(top_scores[:, :K])).nonzero().tolist()
        for b, j in ranked_eos:
            if self.done[b]:
                continue
            beam = int(top_beam[b, j])
            if weights is None:
                hyp_weights = None
            elif self.weight_history is None:  # <eos> first: no token, no rows
                hyp_weights = weights.new_zeros((0, weights.shape[-1]))
            else:
                hyp_weights = self.weight_history[b, beam]
            score = float(top_scores[b, j]) / length_normalizer(length, self.length_penalty)
            self.finished[b].append((score, self.history[b, beam].tolist(), hyp_weights))
        for b, _ in ranked_eos:
            self.done[b] = self.done[b] or len(self.finished[b]) >= K

    def advance(self, top_scores, top_beam, top_token, weights, eos: int) -> torch.Tensor:
        """Keep the K best extensions that do not end in ``<eos>``; return their beams ``(batch, K)``.

        There are at least K: each beam contributes at most one ``<eos>`` candidate to the 2K.
        """
        keep = (top_token == eos).to(torch.int8).sort(dim=1, stable=True).indices[:, :self.K]
        self.scores = top_scores.gather(1, keep)
        beam, tokens = top_beam.gather(1, keep), top_token.gather(1, keep)  # (batch, K)
        t = self.history.shape[-1]
        self.history = torch.cat([self.history.gather(1, beam.unsqueeze(-1).expand(-1, -1, t)),
                                  tokens.unsqueeze(-1)], -1)  # (batch, K, t + 1)
        if weights is not None:
            step_weights = weights.gather(1, beam.unsqueeze(-1).expand(-1, -1, weights.shape[-1])).unsqueeze(2)
            if self.weight_history is not None:
                past = self.weight_history.gather(1, beam[:, :, None, None].expand(
                    -1, -1, *self.weight_history.shape[2:]))
                step_weights = torch.cat([past, step_weights], 2)
            self.weight_history = step_weights
        return beam

    def finish_live(self, max_len: int) -> None:
        """At ``max_len``, the live hypotheses of unfinished sentences count as finished too."""
        for b in range(len(self.done)):
            if self.done[b]:
                continue
            for k in range(self.K):
                if torch.isfinite(self.scores[b, k]):
                    self.finished[b].append((
                        float(self.scores[b, k]) / length_normalizer(max_len, self.length_penalty),
                        self.history[b, k].tolist(),
                        None if self.weight_history is None else self.weight_history[b, k]))

    def best(self, b: int):
        """Sentence ``b``'s finished hypothesis with the best normalised score (the first of equals)."""
        return max(self.finished[b], key=lambda hyp: hyp[0])


def beam_search(model, src: torch.Tensor, src_valid_lens: torch.Tensor, *, bos: int, eos: int,
                max_len: int, beam_size: int = 4, length_penalty: float = 0.6):
    """Batched beam search (``batch * beam_size`` rows through the decoder at once).

    Each sentence keeps ``beam_size`` live hypotheses ranked by their summed log-probability.
    At every step the ``2 * beam_size`` best extensions are taken (``expand``); an extension
    ending in ``<eos>`` that ranks among the first ``beam_size`` becomes a *finished* hypothesis
    (``collect_finished``), and the ``beam_size`` best extensions not ending in ``<eos>`` stay
    alive (``advance``, as in fairseq). A sentence is done once it has ``beam_size`` finished
    hypotheses; at ``max_len`` its live hypotheses count as finished too. The answer is the
    finished hypothesis with the best length-normalised score ``log p(y) / lp(|y|)``, with
    GNMT's ``lp(n) = ((5 + n) / 6) ** alpha``, ``alpha = length_penalty`` and ``n`` the number
    of tokens *including* ``<eos>`` (0: no normalisation; larger favours longer outputs).
    Scores are kept in float64 and ties go to the lower token id, so ``beam_size=1`` gives
    exactly ``greedy_decode``'s output.

    Returns the same as ``greedy_decode``: the best hypothesis per sentence.

    Built in chapter 07 §7; tested in tests/test_seq2seq_decoding.py.
    """
    src, src_valid_lens = _prepare(model, src, src_valid_lens, bos, eos, max_len)
    require_int("beam_size", beam_size, at_least=1)
    require_number("length_penalty", length_penalty, at_least=0)
    batch, device, K = src.shape[0], src.device, beam_size
    beams = _Beams(batch, K, device, length_penalty)
    with _eval_mode(model):
        rows = torch.arange(batch, device=device).repeat_interleave(K)  # sentence of each beam row
        memory = model.encode(src, src_valid_lens).index_select(rows)
        state = model.decoder.init_state(memory)  # (layers, batch * K, H)
        tokens = torch.full((batch * K,), bos, dtype=torch.long, device=device)
        for t in range(max_len):
            logits, state, weights = model.decoder.step(tokens, state, memory)  # (batch * K, V)
            log_probs = F.log_softmax(logits.double(), -1).view(batch, K, -1)
            weights = None if weights is None else weights.view(batch, K, -1)
            top = expand(beams.scores, log_probs, 2 * K)  # (scores, beam, token), each (batch, 2K)
            beams.collect_finished(*top, weights, eos, length=t + 1)
            if all(beams.done):
                break
            beam = beams.advance(*top, weights, eos)
            state = model.decoder.reorder_state(state, (torch.arange(batch, device=device)[:, None] * K
                                                        + beam).flatten())
            tokens = beams.history[:, :, -1].flatten()
        else:
            beams.finish_live(max_len)
    out_ids, out_weights = [], []
    for b in range(batch):
        _, ids, hyp_weights = beams.best(b)
        out_ids.append(ids)
        out_weights.append(None if hyp_weights is None else _trimmed(hyp_weights, len(ids), int(src_valid_lens[b])))
    return out_ids, None if weights is None else out_weights  # the plain decoder has no weights


def default_max_len(src_valid_lens: torch.Tensor) -> int:
    """The default limit on output tokens: twice the longest source (``<eos>`` included) plus 10,
    room for a translation a good deal longer than its source.

    No chapter builds it; tested in tests/test_seq2seq_decoding.py.
    """
    return 2 * int(src_valid_lens.max()) + 10 if src_valid_lens.numel() else 10


def decode(model, src: torch.Tensor, src_valid_lens: torch.Tensor, *, bos: int, eos: int,
           max_len: int | None = None, beam_size: int = 1, length_penalty: float = 0.6):
    """``greedy_decode`` when ``beam_size == 1``, else ``beam_search``; same arguments and returns.

    ``max_len``: default ``default_max_len(src_valid_lens)``. The one entry point that
    ``translate``, ``attn evaluate`` and the BLEU helpers use.

    Used in chapter 06 §7; tested in tests/test_seq2seq_decoding.py.
    """
    require_int("beam_size", beam_size, at_least=1)
    if max_len is None:
        max_len = default_max_len(src_valid_lens)
    if beam_size == 1:
        return greedy_decode(model, src, src_valid_lens, bos=bos, eos=eos, max_len=max_len)
    return beam_search(model, src, src_valid_lens, bos=bos, eos=eos, max_len=max_len, beam_size=beam_size,
                       length_penalty=length_penalty)
