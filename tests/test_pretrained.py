"""The translators shipped in utils/pretrained: they load fast on a CPU, translate deterministically,
and score on the shipped test split what results/real_fra_eng.json (the report's figures) says."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from utils.course.cli import main
from utils.data import normalize
from utils.pretrained import (
    PRETRAINED_DIR,
    PRETRAINED_NAMES,
    TEST_SPLIT_NAME,
    load_pretrained,
    pretrained_path,
    pretrained_test_pairs,
)
from utils.seq2seq import translate
from utils.training import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    return json.loads((ROOT / "results" / "real_fra_eng.json").read_text(encoding="utf-8"))


def test_the_shipped_files_are_small_fp16_and_attributed():
    # the budgets: 20 MB for the two LSTM translators together, 15 MB for the Transformer
    lstm = sum(pretrained_path(name).stat().st_size for name in ("luong", "plain"))
    assert lstm <= 20e6, f"the shipped LSTM checkpoints weigh {lstm / 1e6:.1f} MB"
    transformer = pretrained_path("transformer").stat().st_size
    assert transformer <= 15e6, f"the shipped Transformer weighs {transformer / 1e6:.1f} MB"
    for name in PRETRAINED_NAMES:
        checkpoint = read_checkpoint(pretrained_path(name))
        assert checkpoint["kind"] == "pretrained" and checkpoint["model_config"]["decoder"] == name
        assert {t.dtype for t in checkpoint["model_state"].values() if t.is_floating_point()} == {torch.float16}
        assert checkpoint["data_spec"]["path"] is None and len(checkpoint["data_spec"]["pairs_sha256"]) == 64
    about = (PRETRAINED_DIR / "ABOUT.md").read_text(encoding="utf-8")
    assert "CC-BY 2.0 (France)" in about and "tatoeba.org" in about and TEST_SPLIT_NAME in about


@pytest.mark.parametrize("name", PRETRAINED_NAMES)
def test_loads_on_cpu_in_about_a_second_and_translates_deterministically(name, report):
    started = time.perf_counter()
    model, src_vocab, tgt_vocab, _ = load_pretrained(name)
    seconds = time.perf_counter() - started
    assert seconds < 3, f"loading {name} took {seconds:.2f} s"  # about 0.1 s here; slack for a busy CI
    assert next(model.parameters()).device.type == "cpu" and not model.training
    first = translate(model, ["I have a red car."], src_vocab, tgt_vocab)[0].text
    again = translate(load_pretrained(name)[0], ["I have a red car."], src_vocab, tgt_vocab)[0].text
    assert first == again
    if name == "luong":  # the translation the report shows (its alignment figure)
        shown = {row["source"]: row["translation"] for row in report["alignments"]}
        assert first == shown["I have a red car."]


def test_the_test_split_is_english_sentence_disjoint_and_as_reported(report):
    pairs = pretrained_test_pairs()
    assert len(pairs) == report["test_pairs"] > 3000
    sentences = {normalize(en) for en, _ in pairs}
    # all the translations of one English sentence stay together: consecutive in the file
    last_seen, order = {}, []
    for index, (english, _) in enumerate(pairs):
        key = normalize(english)
        if key in last_seen:
            assert last_seen[key] == index - 1, f"{english!r} is split up in the test file"
        else:
            order.append(key)
        last_seen[key] = index
    assert len(order) == len(sentences)


def test_luong_bleu_on_the_fixed_subset_matches_the_report(report):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from real_corpus import score, subset_pairs

    subset = subset_pairs(pretrained_test_pairs())
    assert len(subset) == report["subset"]["pairs"]
    measured = score("luong", subset)
    expected = report["models"]["luong"]["subset_greedy"]
    assert measured["bleu"] == pytest.approx(expected["bleu"], abs=0.05)
    assert measured["multi_bleu"] == pytest.approx(expected["multi_bleu"], abs=0.05)
    assert measured["signature"] == expected["signature"]


def test_transformer_bleu_on_the_fixed_subset_matches_its_report():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from real_corpus import score, subset_pairs

    report = json.loads((ROOT / "results" / "transformer_fra_eng.json").read_text(encoding="utf-8"))
    measured = score("transformer", subset_pairs(pretrained_test_pairs()))
    expected = report["test"]["transformer"]["subset_greedy"]
    assert measured["pairs"] == expected["pairs"]
    assert measured["bleu"] == pytest.approx(expected["bleu"], abs=0.05)
    assert measured["multi_bleu"] == pytest.approx(expected["multi_bleu"], abs=0.05)
    # the chapter's claim: the Transformer beats Luong on the same test split, greedy and beam
    luong = json.loads((ROOT / "results" / "real_fra_eng.json").read_text(encoding="utf-8"))["models"]["luong"]
    for decoding in ("greedy", "beam4"):
        assert report["test"]["transformer"][decoding]["bleu"] > luong[decoding]["bleu"]


def test_attn_translate_and_evaluate_with_a_shipped_model(capsys):
    assert main(["translate", "--pretrained", "luong", "I am cold.", "--alignment"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("I am cold.  ->  ") and "<eos>" in out
    assert main(["evaluate", "--pretrained", "plain", "--max-sentences", "60", "--examples", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sacreBLEU ") and "(60 of " in lines[0]
    assert "the shipped held-out test split of fra-eng" in lines[0]
    assert lines[2].startswith("multi-reference sacreBLEU ")


@pytest.mark.parametrize("name", PRETRAINED_NAMES)
def test_the_shipped_models_are_the_cpu_real_recipe(name):
    """`attn train --profile cpu-real --decoder NAME` trains exactly what was shipped."""
    import dataclasses

    from utils.seq2seq import ModelConfig
    from utils.training import presets

    model_config, train_config, spec = presets("cpu-real", name)
    checkpoint = read_checkpoint(pretrained_path(name))
    # saved before the transformer's fields existed: equal once their defaults are filled in
    assert ModelConfig(**checkpoint["model_config"]) == model_config
    assert checkpoint["train_config"] == dataclasses.asdict(train_config)
    shipped_spec = {k: v for k, v in checkpoint["data_spec"].items() if k != "pairs_sha256"}
    assert shipped_spec == {k: v for k, v in dataclasses.asdict(spec).items() if k != "pairs_sha256"}
