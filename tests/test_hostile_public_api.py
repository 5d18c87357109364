"""The library's public functions under hostile arguments: a clear error naming the argument, its
dtype/shape/value and what was expected, never a deep PyTorch error (issue 16)."""

from __future__ import annotations

import pytest
import torch

from utils.attention import (
    AdditiveAttention,
    DotProductAttention,
    LuongAttention,
    MultiHeadAttention,
    causal_mask,
    length_mask,
)
from utils.runtime import choose_device
from utils.seq2seq import translate
from utils.training.checkpoint import read_checkpoint


@pytest.mark.parametrize("call, error, message", [
    (lambda: length_mask(torch.tensor([1.5]), 3), TypeError, "valid_lens must be a tensor of integers; got torch.float32"),
    (lambda: length_mask([1, 2], 3), TypeError, "valid_lens must be a tensor of integers; got list"),
    (lambda: length_mask(torch.tensor([1]), -1), ValueError, "num_keys must be an int >= 0; got -1"),
    (lambda: length_mask(torch.tensor([1]), "3"), ValueError, "num_keys must be an int >= 0; got str '3'"),
    (lambda: causal_mask(-1), ValueError, "num_queries must be an int >= 0; got -1"),
    (lambda: causal_mask(3, 2.5), ValueError, "num_keys must be an int >= 0; got float 2.5"),
    (lambda: LuongAttention(0), ValueError, "num_hiddens must be an int >= 1; got 0"),
    (lambda: LuongAttention(4)(torch.randn(2, 3, 5), torch.randn(2, 6, 4), torch.randn(2, 6, 4)), ValueError,
     "queries of shape (2, 3, 5) must have query_size=4 features"),
    (lambda: LuongAttention(4, "dot")(torch.randn(2, 3, 5), torch.randn(2, 6, 4), torch.randn(2, 6, 4)), ValueError,
     "queries and keys must have the same last axis for a dot product"),
    (lambda: LuongAttention(4)(torch.randn(2, 3, 4).half(), torch.randn(2, 6, 4).half(), torch.randn(2, 6, 4).half()),
     TypeError, "queries has dtype torch.float16 but the layer's parameters have torch.float32"),
    (lambda: DotProductAttention()(torch.randn(2, 3, 4).half(), torch.randn(2, 5, 4), torch.randn(2, 5, 4)), TypeError,
     "must share one dtype (or run under torch.autocast); got torch.float16, torch.float32 and torch.float32"),
    (lambda: AdditiveAttention(4, 6, 8)(torch.randn(2, 3, 6).bfloat16(), torch.randn(2, 5, 4).bfloat16(),
                                        torch.randn(2, 5, 4).bfloat16()),
     TypeError, "queries has dtype torch.bfloat16 but the layer's parameters have torch.float32"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.ones(2, 3, 8, dtype=torch.long)] * 3), TypeError,
     "query must be floating point; got dtype torch.int64"),
    (lambda: MultiHeadAttention(8, 2)(*[torch.randn(2, 3, 8).half()] * 3), TypeError,
     "query has dtype torch.float16 but the layer's parameters have torch.float32"),
    (lambda: choose_device("meta"), ValueError, "device must be 'cpu', 'cuda' or 'cuda:N'; got 'meta'"),
])
def test_hostile_arguments_get_a_clear_error(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)


def test_mixed_dtypes_still_work_under_autocast():
    """The dtype checks stand aside where autocast casts for the matmuls (the bf16 training path)."""
    torch.manual_seed(0)
    queries, keys, values = torch.randn(2, 3, 4).bfloat16(), torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = DotProductAttention()(queries, keys, values, torch.tensor([2, 5]))
        mha, _ = MultiHeadAttention(4, 2)(queries, keys, values)
    assert out.shape == (2, 3, 4) and mha.shape == (2, 3, 4)
    assert torch.isfinite(out).all() and torch.isfinite(mha).all()


def test_an_empty_sentence_is_refused_not_translated():
    """Before: "" came out as "<unk> !" (the model's guess for a lone <eos>)."""
    from utils.pretrained import load_pretrained

    model, src_vocab, tgt_vocab, _ = load_pretrained("luong")
    with pytest.raises(ValueError, match=r"sentences\[1\] is empty"):
        translate(model, ["I am cold.", "  "], src_vocab, tgt_vocab)


def test_a_foreign_file_as_a_checkpoint_is_one_line(tmp_path):
    """torch.load's own message for a non-pickle file runs over several lines."""
    png = tmp_path / "pic.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError) as raised:
        read_checkpoint(png)
    assert "pic.png is not a readable checkpoint" in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1
