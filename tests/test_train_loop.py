"""The training loop in-process: metrics, resume after an interruption, divergence, configs."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from utils.data import TranslationData, generated_splits
from utils.runtime import seed_everything
from utils.seq2seq import ModelConfig, build_model
from utils.training import (
    DataSpec,
    TrainConfig,
    TrainingDiverged,
    load_checkpoint,
    presets,
    read_checkpoint,
    train,
)


@pytest.fixture(scope="module")
def data():
    return TranslationData(generated_splits(300, seed=0))  # 240 training pairs: 8 batches of 32


def tiny_model(data, decoder="luong", seed=0):
    seed_everything(seed)
    config = ModelConfig(decoder, embed_size=16, num_hiddens=16, num_layers=1, dropout=0.2)
    return build_model(config, len(data.src_vocab), len(data.tgt_vocab))


def tiny_config(**changes):
    values = dict(steps=12, batch_size=32, lr=5e-3, warmup_steps=2, log_every=4, checkpoint_every=4,
                  eval_every=0, eval_sentences=20, amp="off")
    return TrainConfig(**{**values, **changes})


def test_train_writes_metrics_and_checkpoint(data, tmp_path):
    model = tiny_model(data)
    metrics = train(model, data, tiny_config(), tmp_path, progress=False,
                    data_spec=DataSpec(source="generated", num_pairs=300))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["status"] == "finished" and saved["steps"] == 12 and saved["world_size"] == 1
    assert [entry["step"] for entry in saved["losses"]] == [4, 8, 12]
    assert all(math.isfinite(entry["loss"]) for entry in saved["losses"])
    assert saved["losses"][-1]["loss"] < saved["losses"][0]["loss"]  # it learns something
    assert saved["tokens_per_s"] > 0 and saved["train_tokens"] > 12 * 32 * 3
    assert 0 <= saved["valid_bleu"] <= 100 and saved["bleu"][-1] == {"step": 12, "bleu": saved["valid_bleu"],
                                                                    "sentences": 20}
    assert saved["device"]["type"] == "cpu" and saved["device"]["name"]
    assert saved["versions"]["torch"] == torch.__version__ and saved["versions"]["python"].startswith("3.")
    assert saved["wall_seconds"] >= saved["train_seconds"] > 0
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["step"] == 12 and checkpoint["data_spec"]["num_pairs"] == 300
    loaded, src_vocab, tgt_vocab, _ = load_checkpoint(tmp_path)
    assert src_vocab == data.src_vocab and tgt_vocab == data.tgt_vocab
    for (name, expected), actual in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(expected.cpu(), actual), name


class Interrupt(Exception):
    pass


def interrupt_at(model, step):
    """A forward hook that raises during the ``step``-th training forward pass (1-based)."""
    calls = {"n": 0}

    def hook(module, args):
        if module.training:
            calls["n"] += 1
            if calls["n"] == step:
                raise Interrupt(f"interrupted in step {step}")

    return model.register_forward_pre_hook(hook)


@pytest.mark.parametrize("decoder", ["luong", "bahdanau", "transformer"])
def test_resume_after_interruption_equals_uninterrupted_run(data, tmp_path, decoder):
    # 20 steps over 8 batches per epoch: the interruption (step 11, last checkpoint at 8)
    # and the end both sit in later epochs; dropout makes the RNG state matter
    config = tiny_config(steps=20)
    reference = tiny_model(data, decoder)
    train(reference, data, config, tmp_path / "whole", progress=False)

    interrupted = tiny_model(data, decoder)
    handle = interrupt_at(interrupted, 11)
    with pytest.raises(Interrupt):
        train(interrupted, data, config, tmp_path / "cut", progress=False)
    handle.remove()
    assert read_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 8

    resumed = tiny_model(data, decoder, seed=123)  # its fresh weights must not matter
    metrics = train(resumed, data, config, tmp_path / "cut", resume=True, progress=False)
    assert metrics["resumed_from_steps"] == [8] and metrics["steps"] == 20
    for (name, expected), actual in zip(reference.state_dict().items(), resumed.state_dict().values(),
                                        strict=True):
        assert torch.equal(expected, actual), name
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert [e["loss"] for e in metrics["losses"]] == [e["loss"] for e in whole["losses"]]


def test_resume_without_checkpoint_starts_from_scratch(data, tmp_path):
    metrics = train(tiny_model(data), data, tiny_config(steps=4), tmp_path, resume=True, progress=False)
    assert metrics["steps"] == 4 and metrics["resumed_from_steps"] == []


def test_resume_refuses_another_model(data, tmp_path):
    train(tiny_model(data), data, tiny_config(steps=4), tmp_path, progress=False)
    seed_everything(0)
    other = build_model(ModelConfig("luong", embed_size=8, num_hiddens=16, num_layers=1), len(data.src_vocab),
                        len(data.tgt_vocab))
    with pytest.raises(ValueError, match="holds a model with"):
        train(other, data, tiny_config(steps=8), tmp_path, resume=True, progress=False)


def test_nan_loss_stops_with_a_clear_error(data, tmp_path):
    model = tiny_model(data)
    calls = {"n": 0}

    def poison(module, args, output):
        calls["n"] += 1
        if calls["n"] >= 3:  # the third step's logits become NaN
            return (output[0] * float("nan"), *output[1:])
        return output

    model.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged) as caught:
        train(model, data, tiny_config(), tmp_path, progress=False)
    error = caught.value
    assert error.step == 3 and math.isnan(error.loss)
    assert "step 3" in str(error) and "nan" in str(error) and "lower" in str(error) and "--lr" in str(error)
    # the checkpoint holds the last good state (none here: the first is at step 4)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_huge_learning_rate_diverges(data, tmp_path):
    with pytest.raises(TrainingDiverged, match="learning rate"):
        train(tiny_model(data), data, tiny_config(lr=1e30, warmup_steps=0, steps=20), tmp_path, progress=False)


def test_lr_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [config.lr_factor(step) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert factors[-1] == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be an int >= 1; got 0"),
    ("lr", -1.0, "lr must be a finite number > 0"),
    ("lr", float("nan"), "lr must be a finite number > 0"),
    ("amp", "fp16", "amp must be one of"),
    ("batch_size", 2.5, "batch_size must be an int >= 1"),
])
def test_train_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_train_rejects_wrong_argument_types(data, tmp_path):
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(tiny_model(data), data, {"steps": 3}, tmp_path)
    with pytest.raises(ValueError, match="fewer than"):
        train(tiny_model(data), data, tiny_config(max_len=2, steps=2), tmp_path, progress=False)


def test_presets_per_profile():
    for profile in ("smoke", "cpu", "gpu"):
        model_config, train_config, spec = presets(profile, "bahdanau")
        assert model_config.decoder == "bahdanau"
        assert isinstance(train_config, TrainConfig) and isinstance(spec, DataSpec)
    assert presets("gpu")[2].source == "fra-eng" and presets("gpu")[1].amp == "bf16"
    assert presets("cpu")[2].source == "generated" and presets("smoke")[2].source == "generated"
    assert presets("smoke")[1].steps < presets("cpu")[1].steps < presets("gpu")[1].steps
    with pytest.raises(ValueError, match="profile must be one of"):
        presets("laptop")


def test_transformer_presets_have_their_own_sizes_and_schedule():
    for profile in ("smoke", "cpu", "cpu-real", "gpu"):
        model_config, train_config, _ = presets(profile, "transformer")
        lstm_model, lstm_train, _ = presets(profile, "luong")
        assert model_config.decoder == "transformer" and not model_config.bidirectional
        assert model_config.embed_size == model_config.num_hiddens and model_config.norm_first
        assert train_config.lr <= lstm_train.lr and train_config.warmup_steps >= lstm_train.warmup_steps
        assert train_config.batch_size == lstm_train.batch_size  # the same batches as the LSTMs
    sizes = [presets(profile, "transformer")[0].num_hiddens for profile in ("smoke", "cpu", "cpu-real", "gpu")]
    assert sizes == sorted(sizes)


def test_the_cpu_real_transformer_fits_the_shipping_budget():
    """At most 15 MB in fp16 with the real corpus's vocabularies (4,052 English, 6,616 French tokens)."""
    model = build_model(presets("cpu-real", "transformer")[0], 4052, 6616)
    assert 2 * sum(p.numel() for p in model.parameters()) <= 15_000_000


def test_resume_of_a_run_saved_before_the_transformer_fields(data, tmp_path):
    """A checkpoint whose model config lacks num_heads/ffn_hiddens/norm_first still resumes."""
    from utils.training.checkpoint import save_atomic

    config = tiny_config(steps=8)
    train(tiny_model(data), data, dataclasses.replace(config, steps=4), tmp_path, progress=False)
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    for name in ("num_heads", "ffn_hiddens", "norm_first"):
        del checkpoint["model_config"][name]
    save_atomic(checkpoint, tmp_path / "checkpoint.pt")
    metrics = train(tiny_model(data), data, config, tmp_path, resume=True, progress=False)
    assert metrics["resumed_from_steps"] == [4] and metrics["steps"] == 8


def test_the_real_corpus_cpu_preset():
    """cpu-real: the shipped models' recipe, on the first 73,719 pairs of the downloaded fra-eng."""
    model_config, train_config, spec = presets("cpu-real", "plain")
    assert model_config.decoder == "plain" and train_config.amp == "off"
    assert spec.source == "fra-eng" and spec.max_pairs == 73_719 and spec.min_freq == 3
    assert 0 < train_config.label_smoothing < 1 and train_config.eval_every > 0


def test_data_spec_checks_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="path is required"):
        DataSpec(source="file")
    with pytest.raises(ValueError, match="source must be one of"):
        DataSpec(source="web")
    spec = DataSpec(source="file", path=str(tmp_path / "fra.txt"), max_pairs=100)
    assert DataSpec.from_dict(json.loads(json.dumps(spec.__dict__))) == spec


def test_the_loop_waits_for_the_device_only_at_log_intervals(data, monkeypatch):
    """No ``.item()``, host copy or synchronize from the loop between log lines (nanoGPT's rule)."""
    import sys

    from utils.training import loop, run_state

    steps_done, waits = [0], []
    train_step = loop.train_step

    def counted_step(*args, **kwargs):
        result = train_step(*args, **kwargs)
        steps_done[0] += 1
        return result

    def spy(name, original):
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller in (loop.__file__, run_state.__file__):
                waits.append((steps_done[0], name))
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(loop, "train_step", counted_step)
    for name in ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, spy(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(run_state, "synchronize", spy("synchronize", run_state.synchronize))

    config = tiny_config(steps=12, log_every=4, checkpoint_every=0, eval_every=0, eval_sentences=0)
    metrics = train(tiny_model(data), data, config, progress=False)  # no out_dir: nothing written
    assert steps_done[0] == 12 and [entry["step"] for entry in metrics["losses"]] == [4, 8, 12]
    assert waits, "the loop never reads the loss: the spy is broken"
    assert {step for step, _ in waits} == {4, 8, 12}, waits
