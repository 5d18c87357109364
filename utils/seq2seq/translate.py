"""Sentences in, translations out: normalise, tokenise, encode, decode, detokenise."""

from __future__ import annotations

import re
from typing import NamedTuple

import torch

from utils.data import Vocab, tokenize
from utils.seq2seq.decoding import decode
from utils.validate import require_int

_SPACE_BEFORE_STOP = re.compile(r" ([.,])")


class Translation(NamedTuple):
    """One translated sentence.

    ``text``: the detokenised translation. ``tokens``: its tokens. ``source_tokens``: the
    source's tokens as written plus ``"<eos>"`` (the encoder reads ``<eos>`` too), the column
    labels of ``weights``. ``weights``: ``(len(tokens), len(source_tokens))`` attention weights
    (float32, CPU), ``None`` for the plain decoder.

    Used in chapter 07 §6 as ``translation.weights``; tested in tests/test_seq2seq_decoding.py.
    """

    text: str
    tokens: list[str]
    source_tokens: list[str]
    weights: torch.Tensor | None


def detokenize(tokens: list[str]) -> str:
    """Join tokens with spaces and attach "." and "," to the word before ("?" and "!" keep the
    space that French typography puts before them): ``["il", "dort", "."] -> "il dort."``.

    Used in chapter 06 §8; tested in tests/test_train_evaluation.py.
    """
    return _SPACE_BEFORE_STOP.sub(r"\1", " ".join(tokens))


def translate(model, sentences: list[str], src_vocab: Vocab, tgt_vocab: Vocab, *, beam_size: int = 1,
              max_len: int | None = None, device=None, batch_size: int = 64,
              length_penalty: float = 0.6) -> list[Translation]:
    """Translate raw sentences (``beam_size=1``: greedy decoding, else beam search).

    ``max_len``: the most target tokens per sentence (default: ``default_max_len``, twice the
    longest source of the batch plus 10).
    ``device``: where to run; the model is moved there (default: where its parameters are).
    Sentences are decoded ``batch_size`` at a time, in order.

    Used in chapter 06 §10 and chapter 07 §8; tested in tests/test_seq2seq_decoding.py,
    tests/test_pretrained.py.
    """
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of str, not one str (wrap it: [sentence])")
    sentences = list(sentences)
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"sentences[{i}] must be a str; got {type(sentence).__name__}")
        if not sentence.strip():
            raise ValueError(f"sentences[{i}] is empty; give a sentence to translate")
    require_int("batch_size", batch_size, at_least=1)
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    source_tokens = [tokenize(sentence) for sentence in sentences]
    source_ids = [src_vocab.encode(tokens) + [src_vocab.eos] for tokens in source_tokens]
    results = []
    for start in range(0, len(sentences), batch_size):
        chunk = source_ids[start : start + batch_size]
        src = torch.full((len(chunk), max(len(ids) for ids in chunk)), src_vocab.pad, dtype=torch.long)
        for row, ids in enumerate(chunk):
            src[row, : len(ids)] = torch.tensor(ids)
        valid_lens = torch.tensor([len(ids) for ids in chunk])
        out_ids, out_weights = decode(model, src.to(device), valid_lens.to(device), bos=tgt_vocab.bos,
                                      eos=tgt_vocab.eos, max_len=max_len, beam_size=beam_size,
                                      length_penalty=length_penalty)
        if out_weights is None:  # the plain decoder has no attention weights
            out_weights = [None] * len(out_ids)
        for offset, (ids, weights) in enumerate(zip(out_ids, out_weights, strict=True)):
            tokens = [tgt_vocab.idx_to_token[i] for i in ids]
            results.append(Translation(detokenize(tokens), tokens,
                                       source_tokens[start + offset] + ["<eos>"], weights))
    return results


def head_alignments(model, translation: Translation, src_vocab: Vocab, tgt_vocab: Vocab) -> torch.Tensor | None:
    """``(heads, len(translation.tokens), len(translation.source_tokens))`` cross-attention weights, per head.

    The last decoder layer's heads (their mean is ``translation.weights``), recomputed by feeding
    the translation back under teacher forcing: the same numbers decoding computed, since a
    cached decoding step equals the whole-prefix forward pass (tests/test_seq2seq_transformer.py).
    ``None`` for a decoder without heads (the LSTM decoders).

    Used in chapter 08 §6; tested in tests/test_seq2seq_transformer.py.
    """
    if not hasattr(model.decoder, "head_weights"):
        return None
    device = next(model.parameters()).device
    src = torch.tensor([src_vocab.encode(translation.source_tokens[:-1]) + [src_vocab.eos]], device=device)
    tgt_in = torch.tensor([[tgt_vocab.bos] + tgt_vocab.encode(translation.tokens)], device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(src, torch.tensor([src.shape[1]], device=device), tgt_in)
    finally:
        model.train(was_training)
    return model.decoder.head_weights[0, :, : len(translation.tokens)].float().cpu()
