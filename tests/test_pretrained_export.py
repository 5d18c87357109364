"""Exporting a real-corpus run as a shipped model, the data spec that rebuilds its split, and
`attn evaluate --pairs` (single- and multi-reference BLEU), on a small generated "fra.txt"."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from utils.course.cli import main
from utils.data import generate_corpus, split_by_source
from utils.pretrained import export_pretrained, read_pairs_tsv, write_pairs_tsv
from utils.seq2seq import translate
from utils.training import read_checkpoint
from utils.training.checkpoint import load_checkpoint
from utils.training.config import DataSpec, pairs_digest, spec_splits

NUM_PAIRS = 1500


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A fra.txt-like file of generated pairs in which some English sentences repeat (as in Tatoeba)."""
    pairs = generate_corpus(NUM_PAIRS, 3)
    path = tmp_path_factory.mktemp("corpus") / "fra.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in pairs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--profile", "smoke", "--data", str(corpus), "--steps", "250", "--out", str(out),
                 "--no-progress", "--eval-sentences", "0", "--device", "cpu"]) == 0
    return out


def test_the_run_records_the_digest_of_its_pairs(run, corpus):
    spec = read_checkpoint(run)["data_spec"]
    assert spec["pairs_sha256"] == pairs_digest(read_pairs_tsv(corpus))
    assert spec["source"] == "file"


def test_the_digest_ignores_the_file_format_but_not_the_pairs(corpus, tmp_path):
    pairs = read_pairs_tsv(corpus)
    crlf_three_columns = tmp_path / "other.txt"
    crlf_three_columns.write_bytes("".join(f"{en}\t{fr}\tCC-BY 2.0\r\n" for en, fr in pairs).encode())
    assert pairs_digest(read_pairs_tsv(crlf_three_columns)) == pairs_digest(pairs)
    assert pairs_digest(pairs[:-1]) != pairs_digest(pairs)
    assert pairs_digest([(pairs[0][0], pairs[0][1] + "!"), *pairs[1:]]) != pairs_digest(pairs)


def test_export_is_small_fp16_and_translates_like_the_run(run, corpus, tmp_path):
    shipped, test_tsv = tmp_path / "luong.pt", tmp_path / "test.tsv"
    exported = export_pretrained(run, shipped, corpus=corpus, test_split_path=test_tsv)
    assert all(t.dtype == torch.float16 for t in exported["model_state"].values() if t.is_floating_point())
    assert "optimizer_state" not in exported and "rng_states" not in exported
    # no path of the training machine travels with the model
    assert exported["data_spec"]["path"] is None and exported["data_spec"]["source"] == "fra-eng"
    assert str(tmp_path.parent) not in repr(exported)
    full = run / "checkpoint.pt"
    assert shipped.stat().st_size < 0.6 * full.stat().st_size

    model, src_vocab, tgt_vocab, _ = load_checkpoint(shipped)
    original, *_ = load_checkpoint(full)
    assert next(model.parameters()).dtype == torch.float32  # fp16 on disk, float32 to run
    sentences = ["She eats the green apple.", "We are not tired."]
    first = translate(model, sentences, src_vocab, tgt_vocab)
    again = translate(load_checkpoint(shipped)[0], sentences, src_vocab, tgt_vocab)
    assert [t.text for t in first] == [t.text for t in again]  # deterministic
    for name, tensor in original.state_dict().items():
        assert torch.allclose(model.state_dict()[name], tensor, rtol=1e-3, atol=1e-3), name


def test_the_data_spec_rebuilds_exactly_the_shipped_test_split(run, corpus, tmp_path):
    test_tsv = tmp_path / "test.tsv"
    exported = export_pretrained(run, tmp_path / "m.pt", corpus=corpus, test_split_path=test_tsv)
    shipped_pairs = read_pairs_tsv(test_tsv)
    # the split a reader gets from the exported spec and the same pairs
    spec = DataSpec.from_dict({**exported["data_spec"], "source": "file", "path": str(corpus)})
    assert shipped_pairs == spec_splits(spec).test
    # and the split is by English sentence: the same as split_by_source at the spec's seed
    expected = split_by_source(read_pairs_tsv(corpus), test_frac=0.05, valid_frac=0.05, seed=spec.seed).test
    assert shipped_pairs == expected and len(shipped_pairs) > 10


def test_a_changed_corpus_is_refused(run, corpus, tmp_path, capsys):
    changed = tmp_path / "fra.txt"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    changed.write_text("\n".join([lines[0].replace(".", " !"), *lines[1:]]) + "\n", encoding="utf-8")
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(changed)]) == 1
    err = capsys.readouterr().err
    assert "not the one this run was made with" in err and "SHA-256" in err
    spec = DataSpec.from_dict({**read_checkpoint(run)["data_spec"], "path": str(changed)})
    with pytest.raises(ValueError, match="not the one this run was made with"):
        spec_splits(spec)
    # --resume on the changed corpus: refused too, nothing trained
    before = (run / "checkpoint.pt").read_bytes()
    fresh = dataclasses.replace(spec, pairs_sha256=None)
    spec_splits(fresh)  # without a recorded digest the file is simply read, and the digest recorded
    assert fresh.pairs_sha256 == pairs_digest(read_pairs_tsv(changed))
    assert (run / "checkpoint.pt").read_bytes() == before


def test_evaluate_pairs_scores_every_translation_of_a_repeated_sentence(run, tmp_path, capsys):
    model, src_vocab, tgt_vocab, _ = load_checkpoint(run)
    sources = ["She eats the green apple.", "We are not tired.", "The doctor wants bags."]
    outputs = [t.text for t in translate(model, sources, src_vocab, tgt_vocab)]
    # each English sentence twice: once with the model's own output, once with another French sentence
    pairs = [pair for en, out in zip(sources, outputs, strict=True)
             for pair in ((en, "une autre phrase très différente ici ."), (en, out))]
    file = write_pairs_tsv(pairs, tmp_path / "pairs.tsv")
    assert main(["evaluate", "--checkpoint", str(run), "--pairs", str(file), "--examples", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    single = float(lines[0].split()[1])
    assert lines[0].startswith("sacreBLEU ") and "on test (6 of 6 pairs" in lines[0]
    assert "data: pairs.tsv" in lines[0]
    assert "nrefs:1|" in lines[1]
    # every sentence matches one of its two references exactly: multi-reference BLEU is 100
    assert lines[2].startswith("multi-reference sacreBLEU 100.0 (3 distinct English sentences")
    assert "nrefs:2|" in lines[2]
    assert single < 100


def test_evaluate_pairs_and_checkpoint_errors(run, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(run), "--pairs", str(tmp_path / "none.tsv")]) == 1
    assert "--pairs" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("Hello.\tBonjour.\njust one column\n", encoding="utf-8")
    assert main(["evaluate", "--checkpoint", str(run), "--pairs", str(bad)]) == 1
    assert "line 2" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(run), "--pairs", str(bad), "--split", "valid"]) == 2
    # argparse: --checkpoint and --pretrained exclude each other (a usage error, exit status 2)
    assert main(["evaluate", "--checkpoint", str(run), "--pretrained", "luong"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cpu_real_preset_trains_from_a_local_file(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--profile", "cpu-real", "--data", str(corpus), "--steps", "2", "--out", str(out),
                 "--no-progress", "--eval-sentences", "0", "--checkpoint-every", "0"]) == 0
    assert "profile cpu-real: fra.txt, first 73,719 pairs" in capsys.readouterr().out
    checkpoint = read_checkpoint(out)
    assert checkpoint["train_config"]["label_smoothing"] == 0.1 and checkpoint["data_spec"]["min_freq"] == 3
    assert checkpoint["model_config"]["embed_size"] == 128 and checkpoint["model_config"]["decoder"] == "luong"
