"""`attn train --decoder transformer`, resumed and not; `attn translate --alignment` per head; `attn evaluate`."""

from __future__ import annotations

import json

import pytest
import torch

from utils.course.cli import main
from utils.training import loop as train_loop
from utils.training import read_checkpoint

TRAIN = ["train", "--profile", "smoke", "--decoder", "transformer", "--steps", "8", "--checkpoint-every", "3",
         "--log-every", "3", "--eval-sentences", "10", "--no-progress", "--device", "cpu"]


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer")
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def test_train_prints_the_transformer_and_saves_its_config(trained, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["model_config"]["decoder"] == "transformer"
    assert metrics["model_config"]["num_heads"] == 4 and metrics["model_config"]["norm_first"] is True
    assert metrics["tokens_per_s"] > 0 and metrics["valid_bleu"] is not None
    assert any(key.startswith("decoder.layers.1.cross_attn") for key in read_checkpoint(trained)["model_state"])


def test_an_interrupted_run_resumes_to_the_uninterrupted_parameters(trained, tmp_path, monkeypatch, capsys):
    original, calls = train_loop.train_step, {"n": 0}

    def interrupted_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # during step 5: the last checkpoint is step 3's
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_loop, "train_step", interrupted_step)
    with pytest.raises(Interrupt):
        main([*TRAIN, "--out", str(tmp_path)])
    monkeypatch.setattr(train_loop, "train_step", original)
    assert read_checkpoint(tmp_path)["step"] == 3
    assert main([*TRAIN, "--out", str(tmp_path), "--resume"]) == 0
    assert "resuming at step 3" in capsys.readouterr().out
    expected, actual = read_checkpoint(trained), read_checkpoint(tmp_path)
    assert actual["step"] == expected["step"] == 8
    for name, tensor in expected["model_state"].items():
        assert torch.equal(tensor, actual["model_state"][name]), name
    whole = json.loads((trained / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert [e["loss"] for e in resumed["losses"]] == [e["loss"] for e in whole["losses"]]


def test_resume_refuses_other_transformer_sizes(trained, capsys):
    assert main([*TRAIN, "--out", str(trained), "--resume", "--num-heads", "2"]) == 2
    assert "--num-heads differ(s)" in capsys.readouterr().err


def test_post_ln_and_bad_sizes_from_the_command_line(tmp_path, capsys):
    assert main([*TRAIN, "--steps", "1", "--eval-sentences", "0", "--no-norm-first", "--out", str(tmp_path)]) == 0
    assert "post-LN" in capsys.readouterr().out
    assert read_checkpoint(tmp_path)["model_config"]["norm_first"] is False
    assert main([*TRAIN, "--num-heads", "5", "--out", str(tmp_path / "bad")]) == 2
    assert "num_hiddens=32 (the transformer's d_model) must be divisible by num_heads=5" in capsys.readouterr().err


def test_translate_alignment_shows_the_average_and_every_head(tmp_path, capsys):
    # after one step the model still writes words (after eight it learns to stop at once)
    assert main([*TRAIN, "--steps", "1", "--eval-sentences", "0", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["translate", "She sees the cat.", "--checkpoint", str(tmp_path), "--alignment",
                 "--max-len", "4"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[1] == "(cross-attention of the last decoder layer, averaged over its 4 heads)"
    tables = _tables(lines[2:])
    assert [title for title, _ in tables] == ["average", "head 1 of 4:", "head 2 of 4:", "head 3 of 4:",
                                              "head 4 of 4:"]
    average, heads = tables[0][1], [table for _, table in tables[1:]]
    assert average.shape[1] == 6 and 1 <= average.shape[0] <= 4  # one row per output token
    assert all(head.shape == average.shape for head in heads)
    torch.testing.assert_close(sum(heads) / 4, average, atol=0.006, rtol=0)  # printed to 2 decimals
    torch.testing.assert_close(average.sum(-1), torch.ones(average.shape[0]), atol=0.04, rtol=0)


def _tables(lines):
    """``[(title, weights (target, source))]`` of the printed alignment tables."""
    tables, title, rows = [], "average", []
    for line in lines:
        if line.startswith("head "):
            tables.append((title, torch.tensor(rows)))
            title, rows = line, []
        elif line.strip() and not line.startswith(" "):  # a row: token, then weights
            rows.append([float(cell.rstrip("*")) for cell in line.split()[1:]])
    tables.append((title, torch.tensor(rows)))
    return tables


def test_evaluate_scores_the_transformer(trained, capsys):
    assert main(["evaluate", "--checkpoint", str(trained), "--max-sentences", "20", "--beam", "2"]) == 0
    assert "sacreBLEU" in capsys.readouterr().out
