"""normalize/tokenize against d2l 1.0.3's preprocessing, and the Vocab."""

from __future__ import annotations

import ast
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from utils.data import Vocab, normalize, tokenize

TRICKY = [
    "Go.",
    "Run!",
    "Va\u202f!",
    "Ça alors\xa0!",
    "Qui ?",
    "I'm cold.",
    "Wait... what?!",
    "Hello,world",
    "HELLO, World.",
    ".Starts with a dot",
    "two  spaces .",
    "Tom's \u00abdog\u00bb is here!",
    "",
    "?",
]

EXPECTED = {
    "Go.": "go .",
    "Va\u202f!": "va !",
    "Ça alors\xa0!": "ça alors !",
    "I'm cold.": "i'm cold .",
    "Wait... what?!": "wait . . . what ? !",
    "Hello,world": "hello ,world",
    ".Starts with a dot": ".starts with a dot",
}


def _d2l_mt_fra_eng_functions():
    """d2l 1.0.3's own ``MTFraEng._preprocess``/``_tokenize``, read from its installed source.

    ``from d2l import torch`` pulls in matplotlib, pandas and torchvision (about
    10 s on the CI machine), so the two methods are compiled from the d2l source
    file instead: the same code, without the imports.
    """
    spec = importlib.util.find_spec("d2l")
    if spec is None or spec.origin is None:
        pytest.skip("d2l is not installed")
    source = (Path(spec.origin).parent / "torch.py").read_text(encoding="utf-8")
    module = ast.parse(source)
    cls = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "MTFraEng")
    functions = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name in ("_preprocess", "_tokenize")]
    namespace: dict = {}
    exec(compile(ast.Module(body=functions, type_ignores=[]), spec.origin, "exec"), namespace)
    return namespace["_preprocess"], namespace["_tokenize"]


@pytest.fixture(scope="module")
def d2l_functions():
    return _d2l_mt_fra_eng_functions()


@pytest.mark.parametrize("text", TRICKY)
def test_normalize_matches_d2l(text, d2l_functions):
    d2l_preprocess, _ = d2l_functions
    assert normalize(text) == d2l_preprocess(None, text)


@pytest.mark.parametrize(("text", "expected"), EXPECTED.items())
def test_normalize_expected_strings(text, expected):
    assert normalize(text) == expected


def test_tokenize_matches_d2l(d2l_functions):
    d2l_preprocess, d2l_tokenize = d2l_functions
    pairs = [("Go.", "Va !"), ("I'm  cold.", "J'ai froid\u202f!"), ("Who?", "Qui ?")]
    text = d2l_preprocess(None, "\n".join(f"{en}\t{fr}" for en, fr in pairs))
    d2l_src, d2l_tgt = d2l_tokenize(None, text)
    assert [tokenize(en) + ["<eos>"] for en, _ in pairs] == d2l_src
    assert [tokenize(fr) + ["<eos>"] for _, fr in pairs] == d2l_tgt


@given(st.text(alphabet="aB .,!?'\u202f\xa0éÇ", max_size=30))
def test_normalize_is_idempotent_and_d2l_compatible(d2l_functions, text):
    d2l_preprocess, _ = d2l_functions
    assert normalize(text) == d2l_preprocess(None, text)
    assert normalize(normalize(text)) == normalize(text)
    assert tokenize(normalize(text)) == tokenize(text)
    assert "" not in tokenize(text)


def test_tokenize_punctuation_is_tokens():
    assert tokenize("She sees the small cat.") == ["she", "sees", "the", "small", "cat", "."]
    assert tokenize("Est-ce que tu vois le chat ?") == ["est-ce", "que", "tu", "vois", "le", "chat", "?"]


def test_normalize_rejects_non_str():
    with pytest.raises(TypeError, match="text must be a str"):
        normalize(b"bytes")


# ------------------------------------------------------------------- Vocab


def test_vocab_reserved_ids_and_order():
    vocab = Vocab([["b", "a", "c"], ["a", "c"], ["a"]], reserved_tokens=["<mask>"])
    assert (vocab.pad, vocab.bos, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert vocab.idx_to_token[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab["<mask>"] == 4
    # by descending count, then alphabetically
    assert vocab.idx_to_token[5:] == ["a", "c", "b"]
    assert len(vocab) == 8


def test_vocab_ties_are_alphabetical_whatever_the_input_order():
    assert Vocab(["z", "y", "x"]).idx_to_token[4:] == ["x", "y", "z"]
    assert Vocab(Counter({"x": 2, "z": 5, "y": 2})).idx_to_token[4:] == ["z", "x", "y"]


def test_vocab_min_freq_and_unknown():
    vocab = Vocab([["a", "a", "b"]], min_freq=2)
    assert "a" in vocab and "b" not in vocab
    assert vocab["b"] == vocab.unk == vocab["never seen"]
    assert vocab.encode(["a", "b"]) == [4, 3]
    assert vocab[["a", "b"]] == [4, 3]


def test_vocab_decode_stops_at_eos():
    vocab = Vocab([["je", "vois"]])
    ids = [vocab.bos, vocab["je"], vocab["vois"], vocab.eos, vocab["je"], vocab.pad]
    assert vocab.decode(ids) == ["je", "vois"]
    assert vocab.decode(torch.tensor(ids)) == ["je", "vois"]
    assert vocab.decode(ids, strip_special=False) == ["<bos>", "je", "vois", "<eos>", "je", "<pad>"]


def test_vocab_round_trip_through_json():
    vocab = Vocab([["a", "b", "b"]], min_freq=1, reserved_tokens=["<sep>"])
    restored = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored == vocab
    assert restored.idx_to_token == vocab.idx_to_token
    assert restored["b"] == vocab["b"] and restored.unk == 3


def test_vocab_errors_name_the_argument():
    vocab = Vocab([["a"]])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab([["a"]], min_freq=-1)
    with pytest.raises(TypeError, match="tokens must be a list"):
        vocab.encode("a b")
    with pytest.raises(ValueError, match=r"ids\[1\] = 99"):
        vocab.decode([4, 99])
    with pytest.raises(ValueError, match="must start with"):
        Vocab.from_dict({"tokens": ["a", "<pad>"]})
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))
