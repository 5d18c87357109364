"""Validation and test quality: decode a split and score it with sacreBLEU."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BleuResult:
    """``bleu`` (sacreBLEU, 0-100) of ``hypotheses`` against ``references`` for ``sources``."""

    bleu: float
    sources: list[str]
    hypotheses: list[str]
    references: list[str]

    @property
    def num_sentences(self) -> int:
        return len(self.hypotheses)


def decode_split(model, data, split: str, *, max_sentences: int | None = None, beam_size: int = 1,
                 batch_size: int = 64, max_len: int | None = None, device=None) -> list[list[int]]:
    """Target ids decoded for the first ``max_sentences`` pairs of ``split`` (in split order)."""
    from utils.seq2seq import beam_search, greedy_decode

    if not isinstance(beam_size, int) or isinstance(beam_size, bool) or beam_size < 1:
        raise ValueError(f"beam_size must be an int >= 1; got {beam_size!r}")
    count = len(data.pairs[split]) if max_sentences is None else min(max_sentences, len(data.pairs[split]))
    device = next(model.parameters()).device if device is None else torch.device(device)
    bos, eos = data.tgt_vocab.bos, data.tgt_vocab.eos
    decoded: list[list[int]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, count, batch_size):
                batch = data.make_batch(split, range(start, min(start + batch_size, count))).to(device)
                # room for a translation a bit longer than the longest source
                limit = max_len if max_len is not None else int(batch.src_valid_lens.max()) * 2 + 5
                if beam_size == 1:
                    ids, _ = greedy_decode(model, batch.src, batch.src_valid_lens, bos=bos, eos=eos,
                                           max_len=limit)
                else:
                    ids, _ = beam_search(model, batch.src, batch.src_valid_lens, bos=bos, eos=eos,
                                         max_len=limit, beam_size=beam_size)
                decoded.extend(list(map(int, row)) for row in ids)
    finally:
        model.train(was_training)
    return decoded


def bleu_on_split(model, data, split: str = "valid", *, max_sentences: int | None = None,
                  beam_size: int = 1, batch_size: int = 64, device=None) -> BleuResult:
    """sacreBLEU of the model's translations of ``split`` (greedy unless ``beam_size > 1``).

    Hypotheses and references go through the same ``tokenize`` +
    ``detokenize`` (normalised, lower-case), so the score measures the model,
    not casing conventions; sacreBLEU's 13a tokenizer then scores them.
    """
    from utils.data import tokenize
    from utils.metrics import sacre_bleu
    from utils.seq2seq import detokenize

    decoded = decode_split(model, data, split, max_sentences=max_sentences, beam_size=beam_size,
                           batch_size=batch_size, device=device)
    pairs = data.pairs[split][: len(decoded)]
    hypotheses = [detokenize(data.tgt_vocab.decode(ids)) for ids in decoded]
    references = [detokenize(tokenize(fr)) for _, fr in pairs]
    score = sacre_bleu(hypotheses, references) if hypotheses else 0.0
    return BleuResult(float(score), [en for en, _ in pairs], hypotheses, references)
