"""`attn train`, `attn translate`, `attn evaluate` (in-process: utils.course.cli.main is what the process runs)."""

from __future__ import annotations

import json

import pytest
import torch

from utils.course.cli import main
from utils.data import generate_corpus, generated_splits
from utils.training import read_checkpoint
from utils.training.commands.translate import alignment_table
from utils.training.config import pairs_digest


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("translator")
    status = main(["train", "--profile", "smoke", "--steps", "60", "--out", str(out), "--no-progress",
                   "--eval-sentences", "30", "--device", "cpu"])
    assert status == 0
    return out


def test_train_prints_a_summary_and_writes_its_files(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["steps"] == 60 and metrics["model_config"]["decoder"] == "luong"
    digest = metrics["data"].pop("pairs_sha256")
    assert metrics["data"] == {"source": "generated", "num_pairs": 2000, "path": None, "max_pairs": None,
                               "seed": 0, "min_freq": 2}
    assert digest == pairs_digest(generate_corpus(2000, 0))
    checkpoint = read_checkpoint(trained)
    assert checkpoint["train_config"]["steps"] == 60 and checkpoint["data_spec"]["num_pairs"] == 2000


def test_translate_prints_one_line_per_sentence(trained, capsys):
    assert main(["translate", "I am cold.", "She sees the cat.", "--checkpoint", str(trained)]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 2 and all(lines)
    assert main(["translate", "I am cold.", "--checkpoint", str(trained / "checkpoint.pt"), "--beam", "3"]) == 0
    assert capsys.readouterr().out.strip()


def test_translate_alignment_prints_a_source_by_target_table(trained, capsys):
    assert main(["translate", "She sees the cat.", "--checkpoint", str(trained), "--alignment"]) == 0
    out = capsys.readouterr().out
    header = out.split("\n")[1].split()
    assert header == ["she", "sees", "the", "cat", ".", "<eos>"]
    rows = [line.split() for line in out.split("\n")[2:] if line.strip()]
    assert rows, out
    for row in rows:
        weights = [float(cell.rstrip("*")) for cell in row[1:]]
        assert len(weights) == 6 and sum(weights) == pytest.approx(1.0, abs=0.04)
        assert sum(cell.endswith("*") for cell in row[1:]) == 1


def test_translate_plot_saves_labelled_alignment_heatmaps(trained, tmp_path, capsys):
    image = tmp_path / "alignments.png"
    assert main(["translate", "She sees the cat.", "I am cold.", "--checkpoint", str(trained),
                 "--plot", str(image)]) == 0
    assert "alignments saved to" in capsys.readouterr().out
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_alignment_table_layout_and_shape_check():
    table = alignment_table(["i", "am", "<eos>"], ["j'ai", "<eos>"], torch.tensor([[0.7, 0.2, 0.1], [0, 0, 1.0]]))
    lines = table.split("\n")
    assert lines[0].split() == ["i", "am", "<eos>"]
    assert lines[1].split() == ["j'ai", "0.70*", "0.20", "0.10"]
    assert lines[2].split() == ["<eos>", "0.00", "0.00", "1.00*"]
    with pytest.raises(ValueError, match=r"weights must have shape \(2, 3\)"):
        alignment_table(["i", "am", "<eos>"], ["j'ai", "<eos>"], torch.ones(3, 3))


def test_evaluate_prints_sacrebleu_on_the_rebuilt_test_split(trained, capsys):
    assert main(["evaluate", "--checkpoint", str(trained), "--max-sentences", "40", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    num_test = len(generated_splits(2000, seed=0).test)  # the split the checkpoint's data spec rebuilds
    assert out.startswith("sacreBLEU ") and f"on test (40 of {num_test} pairs, greedy decoding" in out
    score = float(out.split()[1])
    assert 0 <= score <= 100
    assert "model:" in out and "reference:" in out


def test_training_divergence_exits_1_with_the_message(tmp_path, capsys):
    status = main(["train", "--profile", "smoke", "--lr", "1e30", "--warmup-steps", "0", "--out", str(tmp_path),
                   "--no-progress", "--eval-sentences", "0"])
    captured = capsys.readouterr()
    assert status == 1
    assert "attn train: error: training diverged at step" in captured.err
    assert "learning rate" in captured.err and "Traceback" not in captured.err + captured.out


def test_resume_refuses_changed_model_options(trained, capsys):
    status = main(["train", "--out", str(trained), "--resume", "--num-hiddens", "64", "--no-progress"])
    assert status == 2
    assert "--num-hiddens differ" in capsys.readouterr().err


def test_resume_of_a_finished_run_keeps_it(trained, capsys):
    before = read_checkpoint(trained)["model_state"]
    assert main(["train", "--out", str(trained), "--resume", "--no-progress", "--eval-sentences", "30"]) == 0
    assert "resuming at step 60" in capsys.readouterr().out
    after = read_checkpoint(trained)["model_state"]
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize("argv, message", [
    (["translate", "hi", "--checkpoint", "nowhere/checkpoint.pt"], "no checkpoint at"),
    (["evaluate", "--checkpoint", "nowhere"], "no checkpoint at"),
    (["train", "--data", "nowhere/fra.txt", "--out", "x"], "--data nowhere/fra.txt: no such file"),
    (["train", "--profile", "smoke", "--steps", "0", "--out", "x"], "argument --steps: must be a whole number >= 1; got 0"),
    (["evaluate", "--pretrained", "luong", "--batch-size", "-1"], "argument --batch-size: must be a whole number >= 1"),
    (["evaluate", "--pretrained", "luong", "--batch-size", "0"], "argument --batch-size: must be a whole number >= 1"),
    (["translate", "hi", "--pretrained", "luong", "--max-len", "0"], "argument --max-len: must be a whole number >= 1"),
    (["translate", "hi", "--pretrained", "luong", "--beam", "two"], "argument --beam: must be a whole number >= 1; got 'two'"),
    (["translate", "hi", "--pretrained", "luong", "--device", "banana"], "device must be 'cpu', 'cuda' or 'cuda:N'; got 'banana'"),
    (["train", "--profile", "smoke", "--lr", "nan", "--out", "x"], "argument --lr: must be a number in (0, inf)"),
    (["train", "--profile", "smoke", "--dropout", "1.5", "--out", "x"], "argument --dropout: must be a number in [0, 1)"),
    (["train", "--profile", "smoke", "--threads", "0", "--out", "x"], "argument --threads: must be a whole number >= 1"),
])
def test_bad_arguments_are_reported(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_finished_run_is_never_overwritten_silently(trained, capsys):
    before = read_checkpoint(trained)
    status = main(["train", "--profile", "smoke", "--steps", "3", "--out", str(trained), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    after = read_checkpoint(trained)
    assert after["step"] == before["step"] == 60  # untouched


def test_overwrite_starts_over_deliberately(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--profile", "smoke", "--out", str(out), "--no-progress", "--eval-sentences", "0"]
    assert main([*args, "--steps", "4"]) == 0
    assert main([*args, "--steps", "2", "--overwrite"]) == 0
    assert read_checkpoint(out)["step"] == 2


def test_out_that_is_a_file_or_unwritable_fails_before_training(tmp_path, capsys):
    a_file = tmp_path / "runs.txt"
    a_file.write_text("not a folder")
    assert main(["train", "--profile", "smoke", "--steps", "2", "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    # a folder below a file can never be created, whoever runs the tests (root included)
    assert main(["train", "--profile", "smoke", "--steps", "2", "--out", str(a_file / "run")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_resume_with_another_profile_is_refused(trained, capsys):
    status = main(["train", "--profile", "cpu", "--out", str(trained), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "other sizes than --profile cpu" in err


@pytest.mark.parametrize("damage, message", [
    (lambda state: state.pop("src_vocab"), "lacks src_vocab: it is damaged"),
    (lambda state: state["model_config"].update(num_hiddens=7), "does not match its saved configuration"),
])
def test_a_damaged_checkpoint_is_a_one_line_error(trained, tmp_path, capsys, damage, message):
    from utils.training import save_atomic

    state = read_checkpoint(trained)
    damage(state)
    save_atomic(state, tmp_path / "checkpoint.pt")
    for argv in (["translate", "Hi.", "--checkpoint", str(tmp_path)], ["evaluate", "--checkpoint", str(tmp_path)]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
