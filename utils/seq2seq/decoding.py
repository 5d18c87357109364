"""Decoding a trained model: batched greedy search and batched beam search.

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

from utils.seq2seq.encoder import check_source


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")


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
    check_source(src, src_valid_lens)
    _check_int("bos", bos, 0)
    _check_int("eos", eos, 0)
    _check_int("max_len", max_len, 1)
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
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016); 1 when alpha = 0."""
    return ((5.0 + length) / 6.0) ** alpha


def beam_search(model, src: torch.Tensor, src_valid_lens: torch.Tensor, *, bos: int, eos: int,
                max_len: int, beam_size: int = 4, length_penalty: float = 0.6):
    """Batched beam search (``batch * beam_size`` rows through the decoder at once).

    Each sentence keeps ``beam_size`` live hypotheses ranked by their summed log-probability.
    At every step the ``2 * beam_size`` best extensions are taken; an extension ending in
    ``<eos>`` that ranks among the first ``beam_size`` becomes a *finished* hypothesis, and the
    ``beam_size`` best extensions not ending in ``<eos>`` stay alive (as in fairseq). A sentence
    is done once it has ``beam_size`` finished hypotheses; at ``max_len`` its live hypotheses
    count as finished too. The answer is the finished hypothesis with the best
    length-normalised score ``log p(y) / lp(|y|)``, with GNMT's ``lp(n) = ((5 + n) / 6) ** alpha``,
    ``alpha = length_penalty`` and ``n`` the number of tokens *including* ``<eos>`` (0: no
    normalisation; larger favours longer outputs). Scores are kept in float64 and ties go to the
    lower token id, so ``beam_size=1`` gives exactly ``greedy_decode``'s output.

    Returns the same as ``greedy_decode``: the best hypothesis per sentence.
    """
    src, src_valid_lens = _prepare(model, src, src_valid_lens, bos, eos, max_len)
    _check_int("beam_size", beam_size, 1)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not length_penalty >= 0:
        raise ValueError(f"length_penalty must be a number >= 0; got {length_penalty!r}")
    batch, device, K = src.shape[0], src.device, beam_size
    finished: list[list[tuple[float, list[int], torch.Tensor | None]]] = [[] for _ in range(batch)]
    done = [False] * batch
    with _eval_mode(model):
        memory = model.encode(src, src_valid_lens)
        rows = torch.arange(batch, device=device).repeat_interleave(K)  # sentence of each beam row
        memory = memory.index_select(rows)
        state = model.decoder.init_state(memory)  # (layers, batch * K, H)
        # only beam 0 is live at the start, so the first step does not pick K copies of one token
        scores = torch.full((batch, K), float("-inf"), dtype=torch.float64, device=device)
        scores[:, 0] = 0.0
        tokens = torch.full((batch * K,), bos, dtype=torch.long, device=device)
        history = torch.zeros((batch, K, 0), dtype=torch.long, device=device)  # tokens so far
        weight_history = None  # (batch, K, steps, src_steps)
        for t in range(max_len):
            logits, state, weights = model.decoder.step(tokens, state, memory)  # (batch * K, V)
            vocab = logits.shape[-1]
            log_probs = F.log_softmax(logits.double(), -1).view(batch, K, vocab)
            candidates = (scores.unsqueeze(-1) + log_probs).view(batch, K * vocab)
            top_scores, top_index = candidates.topk(min(2 * K, K * vocab), dim=1)  # (batch, 2K)
            # among equal scores put the lower flat index first (what argmax does): sort by
            # index, then stably by score
            by_index = top_index.sort(dim=1).indices
            top_scores, top_index = top_scores.gather(1, by_index), top_index.gather(1, by_index)
            order = top_scores.sort(dim=1, descending=True, stable=True).indices
            top_scores, top_index = top_scores.gather(1, order), top_index.gather(1, order)
            top_beam, top_token = top_index // vocab, top_index % vocab  # (batch, 2K)
            is_eos = top_token == eos
            has_weights = weights is not None
            if has_weights:
                weights = weights.view(batch, K, -1)
            # finished hypotheses: <eos> among the first K candidates of a sentence not yet done
            ranked_eos = (is_eos[:, :K] & torch.isfinite(top_scores[:, :K])).nonzero().tolist()
            for b, j in ranked_eos:
                if done[b]:
                    continue
                beam, score = int(top_beam[b, j]), float(top_scores[b, j])
                if weights is None:
                    hyp_weights = None
                elif weight_history is None:  # <eos> first: no token, no rows
                    hyp_weights = weights.new_zeros((0, weights.shape[-1]))
                else:
                    hyp_weights = weight_history[b, beam]
                finished[b].append((score / length_normalizer(t + 1, length_penalty),
                                    history[b, beam].tolist(), hyp_weights))
            for b, _ in ranked_eos:
                done[b] = done[b] or len(finished[b]) >= K
            if all(done):
                break
            # live hypotheses: the K best candidates that do not end in <eos> (there are >= K:
            # each beam contributes at most one <eos> candidate)
            keep = is_eos.to(torch.int8).sort(dim=1, stable=True).indices[:, :K]  # (batch, K)
            scores = top_scores.gather(1, keep)
            beam, tokens = top_beam.gather(1, keep), top_token.gather(1, keep)  # (batch, K)
            history = torch.cat([history.gather(1, beam.unsqueeze(-1).expand(-1, -1, t)),
                                 tokens.unsqueeze(-1)], -1)  # (batch, K, t + 1)
            if weights is not None:
                step_weights = weights.gather(1, beam.unsqueeze(-1).expand(-1, -1, weights.shape[-1]))
                if weight_history is None:
                    weight_history = step_weights.unsqueeze(2)
                else:
                    past = weight_history.gather(1, beam[:, :, None, None].expand(
                        -1, -1, *weight_history.shape[2:]))
                    weight_history = torch.cat([past, step_weights.unsqueeze(2)], 2)
            flat = (torch.arange(batch, device=device).unsqueeze(1) * K + beam).flatten()
            state = model.decoder.reorder_state(state, flat)
            tokens = tokens.flatten()
        else:
            # max_len reached: the live hypotheses of unfinished sentences count too
            for b in range(batch):
                if done[b]:
                    continue
                for k in range(K):
                    if torch.isfinite(scores[b, k]):
                        finished[b].append((float(scores[b, k]) / length_normalizer(max_len, length_penalty),
                                            history[b, k].tolist(),
                                            None if weight_history is None else weight_history[b, k]))
    out_ids, out_weights = [], []
    for b in range(batch):
        best = max(finished[b], key=lambda hyp: hyp[0])  # the first of equal scores
        out_ids.append(best[1])
        out_weights.append(None if best[2] is None
                           else _trimmed(best[2], len(best[1]), int(src_valid_lens[b])))
    return out_ids, out_weights if has_weights else None
