"""benchmarks/translator.py at smoke size on the CPU: the throughput table and ratio, the
time-to-quality table (equal minutes, test BLEU), and the d2l model's greedy decoder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from repository_scripts import load_script

from utils.data import TranslationData, generated_splits


def run_benchmark(tmp_path, tmp_path_factory, root, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):  # see tests/test_train_resume.py
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp() / "pycache")
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "translator.py"), "--smoke", "--device", "cpu",
         "--threads", "1", "--json", str(tmp_path / "bench.json"), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/translator.py")


def test_benchmark_smoke_prints_the_table_with_a_ratio(tmp_path, tmp_path_factory, root):
    result = run_benchmark(tmp_path, tmp_path_factory, root, "--profile-steps", str(tmp_path / "profile.txt"))
    lines = result.stdout.strip().split("\n")
    assert lines[0].startswith("translator training throughput: generated corpus (2,000 pairs)")
    assert lines[1].split()[:5] == ["model", "parameters", "precision", "tokens/s", "ms/step"]
    assert lines[3].startswith("ours: Luong") and lines[4].startswith("d2l: Bahdanau (GRU")
    for row in lines[3:5]:
        assert re.search(r"fp32\s+[\d,]+\s+[\d.]+$", row), row
    match = re.fullmatch(r"ratio \(ours / d2l tokens/s\): (\d+\.\d\d)x", lines[5])
    assert match, lines[5]
    saved = json.loads((tmp_path / "bench.json").read_text())
    ours, d2l = saved["rows"]
    assert ours["tokens"] == d2l["tokens"] > 0  # the same batches for both
    assert float(match.group(1)) == round(ours["tokens_per_s"] / d2l["tokens_per_s"], 2)
    # --profile-steps: a profiler table per model, headed by its wall time
    profile = (tmp_path / "profile.txt").read_text()
    headers = re.findall(r"^(ours: Luong|d2l: Bahdanau).*: 3 steps took [\d.]+ ms of wall time", profile, re.M)
    assert headers == ["ours: Luong", "d2l: Bahdanau"]
    assert "Self CPU time total" in profile and "aten::" in profile
    # and the GPU run's report shows the table (scripts/gpu_run.py reads these JSON files)
    (tmp_path / "translator_fp32.json").write_text((tmp_path / "bench.json").read_text())
    report = load_script("scripts/gpu_run.py").report(tmp_path, [])
    assert f"| {ours['model']} | fp32 | {ours['tokens_per_s']:,.0f} |" in report
    assert f"ratio (ours / d2l tokens/s): {saved['ratio']:.2f}x" in report


def test_time_to_quality_smoke_trains_both_for_the_budget_and_scores_the_test_split(
        tmp_path, tmp_path_factory, root):
    minutes = 0.05  # 3 s of training each
    result = run_benchmark(tmp_path, tmp_path_factory, root, "--time-to-quality", str(minutes))
    lines = result.stdout.strip().split("\n")
    assert lines[0].startswith("translator time to quality: generated corpus, 2,000 pairs")
    assert lines[0].endswith("0.05 min of training each")
    assert lines[1].split() == ["model", "parameters", "steps", "epochs", "train", "min", "tokens/s", "BLEU",
                                "multi-ref"]
    assert lines[3].startswith("ours: Luong") and lines[4].startswith("d2l: Bahdanau GRU")
    for row in lines[3:5]:
        *_, minutes_column, _, bleu, multi_bleu = row.split()
        assert 0 <= float(bleu) <= 100 and 0 <= float(multi_bleu) <= 100, row
        assert 0.5 * minutes <= float(minutes_column) + 0.005 <= 3 * minutes, row  # printed to 0.01 min
    assert re.search(r"^signature \(single reference\): nrefs:1\|.*tok:13a", result.stdout, re.M)
    assert re.search(r"^signature \(multi-reference\): nrefs:var\|.*tok:13a", result.stdout, re.M)
    assert result.stdout.count("\n  source:") == 3 and result.stdout.count("\n  d2l:") == 3

    saved = json.loads((tmp_path / "bench.json").read_text())
    ours, d2l = saved["rows"]
    for row in (ours, d2l):
        # the machine may be busy: a wide margin around the budget, not a benchmark of the clock
        assert 0.5 * 60 * minutes <= row["train_seconds"] <= 3 * 60 * minutes, row
        assert 0 <= row["bleu"] <= 100 and 0 <= row["multi_bleu"] <= 100
        assert row["steps"] > 0 and row["epochs"] == pytest.approx(row["steps"] * row["batch_size"] / 1609)
        assert row["test_sentences"] == saved["data"]["sizes"]["test"]
    assert ours["steps"] == saved["calibration"]["steps"]
    assert ours["signature"] == d2l["signature"] and ours["multi_signature"] == d2l["multi_signature"]
    assert [set(example) for example in saved["examples"]] == [{"source", "reference", "ours", "d2l"}] * 3


def test_our_transformer_is_timed_against_d2l_too(bench, capsys):
    assert bench.main(["--smoke", "--device", "cpu", "--decoder", "transformer", "--steps", "2", "--warmup", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("ours:", "d2l:"))]
    assert rows[0].startswith("ours: Transformer (pre-LN, 4 heads)") and rows[1].startswith("d2l: Bahdanau")


def test_time_to_quality_refuses_the_throughput_options(root):
    for option in (["--steps", "5"], ["--profile-steps", "p.txt"]):
        result = subprocess.run([sys.executable, str(root / "benchmarks" / "translator.py"), "--time-to-quality",
                                 "1", *option], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and f"{option[0]} is for the throughput mode" in result.stderr


def tiny_d2l(bench, vocab_size: int = 12):
    torch.manual_seed(0)
    model = bench.d2l_model(vocab_size, vocab_size, 8, 8, 2, tgt_pad=0, dropout=0.2)
    src = torch.tensor([[5, 6, 7, 3, 0], [4, 3, 0, 0, 0], [8, 9, 10, 11, 3]])  # (3, 5), 3 = <eos>
    valid = torch.tensor([4, 2, 5])
    model(src, torch.full((3, 2), 1), valid)  # materialise the lazy output layer
    return model, src, valid


def test_d2l_greedy_decoder_stops_at_eos_and_at_the_length_limit(bench):
    model, src, valid = tiny_d2l(bench)
    calls = []
    forward = model.decoder.forward
    model.decoder.forward = lambda *a: calls.append(a[0].shape) or forward(*a)

    rows = bench.d2l_greedy_decode(model, src, valid, bos=1, eos=2, max_len=7)  # untrained: any tokens
    assert len(rows) == 3 and all(len(row) <= 7 and 2 not in row for row in rows)
    assert all(isinstance(token, int) and 0 <= token < 12 for row in rows for token in row)
    assert calls and all(shape == (3, 1) for shape in calls)  # one token per sentence and step
    assert model.training  # its mode is restored

    with torch.no_grad():
        model.decoder.dense.bias[2] = 1e4  # <eos> always wins: empty translations after one step
    calls.clear()
    assert bench.d2l_greedy_decode(model, src, valid, bos=1, eos=2, max_len=7) == [[], [], []]
    assert len(calls) == 1
    with torch.no_grad():
        model.decoder.dense.bias[2], model.decoder.dense.bias[9] = 0.0, 1e4  # never <eos>: cut at max_len
    assert bench.d2l_greedy_decode(model, src, valid, bos=1, eos=2, max_len=7) == [[9] * 7] * 3


def test_d2l_decode_split_keeps_the_split_order(bench):
    data = TranslationData(generated_splits(300, seed=0))
    torch.manual_seed(0)
    model = bench.d2l_model(len(data.src_vocab), len(data.tgt_vocab), 8, 8, 1, tgt_pad=data.tgt_vocab.pad)
    first = data.make_batch("train", range(2))
    model(first.src, first.tgt_in, first.src_valid_lens)
    decoded = bench.d2l_decode_split(model, data, "test", torch.device("cpu"), batch_size=1)
    assert len(decoded) == len(data.pairs["test"])
    for i in range(len(decoded)):  # sorted by length to decode, back in split order after
        batch = data.make_batch("test", [i])
        alone = bench.d2l_greedy_decode(model, batch.src, batch.src_valid_lens, bos=data.tgt_vocab.bos,
                                        eos=data.tgt_vocab.eos, max_len=2 * int(batch.src_valid_lens[0]) + 5)
        assert decoded[i] == alone[0]


def test_results_record_the_data_file_by_name_only(bench):
    import argparse

    recorded = bench.recorded_args(argparse.Namespace(data="/home/someone/corpora/fra.txt", threads=2))
    assert recorded == {"data": "fra.txt", "threads": 2}
    assert bench.file_name(None) is None
