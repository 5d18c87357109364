"""benchmarks/gpu_training.py: a budget-planned run, exported as the shipped models are, then scored.

On the CPU at ``--tiny`` sizes (what the GPU run does with the ``gpu-real`` preset on the
shipped corpus), on a generated corpus written as a fra.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from repository_scripts import load_script

from utils.data import generate_corpus
from utils.pretrained import write_pairs_tsv
from utils.training import presets
from utils.training.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_pairs_tsv(generate_corpus(3000, seed=1), tmp_path_factory.mktemp("corpus") / "fra.txt")


def run(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/gpu_training.py", *args], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_tiny_run_trains_for_its_plan_exports_fp16_and_scores_the_export(root, corpus, tmp_path):
    result = run(root, "--data", str(corpus), "--tiny", "--device", "cpu", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "training.json").read_text())
    assert report["tiny"] and report["minutes"] == 0.05
    run_ = report["run"]
    assert run_["steps"] == report["plan"]["steps"] >= 1
    assert run_["device"]["type"] == "cpu" and run_["model_config"]["decoder"] == "transformer"
    assert len(run_["bleu"]) >= 1 and run_["data_sizes"]["test"] == report["test"]["greedy"]["pairs"]
    for key in ("greedy", "beam4", "subset_greedy"):
        assert 0 <= report["test"][key]["bleu"] <= 100 and "nrefs:1" in report["test"][key]["signature"]
    assert report["test"]["subset_greedy"]["pairs"] < report["test"]["greedy"]["pairs"]
    assert "shipped" not in report and "verdict" not in report  # a tiny run compares with nothing
    exported = read_checkpoint(tmp_path / "transformer_gpu.pt")
    assert exported["kind"] == "pretrained" and exported["step"] == run_["steps"]
    assert all(t.dtype == torch.float16 for t in exported["model_state"].values() if t.is_floating_point())
    assert report["exported_bytes"] == (tmp_path / "transformer_gpu.pt").stat().st_size
    assert (tmp_path / "training.png").stat().st_size > 0 and (tmp_path / "run" / "metrics.json").is_file()
    assert len(report["samples"]) > 0 and set(report["samples"][0]) == {"source", "hypothesis", "reference"}
    assert f"test BLEU greedy {report['test']['greedy']['bleu']:.2f}" in result.stdout


def test_a_corpus_that_is_not_the_shipped_one_is_refused_before_training(root, corpus, tmp_path):
    result = run(root, "--data", str(corpus), "--device", "cpu", "--out", str(tmp_path))
    assert result.returncode == 1 and "does not give the shipped test split" in result.stderr
    assert not (tmp_path / "run").exists()
    assert run(root, "--data", str(corpus), "--minutes", "0", "--out", str(tmp_path)).returncode == 2


def test_the_verdict_asks_for_both_greedy_and_beam():
    training = load_script("benchmarks/gpu_training.py")
    shipped = {"greedy": {"bleu": 34.31}, "beam4": {"bleu": 35.99}}
    assert training.verdict({"greedy": {"bleu": 36.0}, "beam4": {"bleu": 37.0}}, shipped)["replaces_shipped"]
    assert not training.verdict({"greedy": {"bleu": 36.0}, "beam4": {"bleu": 35.0}}, shipped)["replaces_shipped"]


def test_the_gpu_real_preset_is_the_shipped_model_on_gpu_batches():
    """Same sizes (so the 15 MB budget holds) and data as cpu-real; bigger bf16 batches, more dropout."""
    for decoder in ("luong", "transformer"):
        gpu_model, gpu_train, gpu_data = presets("gpu-real", decoder)
        cpu_model, cpu_train, cpu_data = presets("cpu-real", decoder)
        assert gpu_data == cpu_data
        different = {k for k, v in vars(gpu_model).items() if vars(cpu_model)[k] != v}
        assert different <= {"dropout"} and gpu_model.dropout >= cpu_model.dropout
        assert gpu_train.amp == "bf16" and gpu_train.batch_size == 4 * cpu_train.batch_size
        assert gpu_train.label_smoothing == cpu_train.label_smoothing
