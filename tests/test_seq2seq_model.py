"""The encoders, the four decoders and build_model: shapes, padding, step == forward, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from utils.seq2seq import (
    BahdanauDecoder,
    Decoder,
    LuongDecoder,
    Memory,
    ModelConfig,
    PlainDecoder,
    Seq2Seq,
    Seq2SeqEncoder,
    TransformerDecoder,
    build_model,
)

SRC_VOCAB, TGT_VOCAB = 23, 29
CASES = [("plain", False, "general"), ("bahdanau", False, "general"), ("luong", False, "general"),
         ("luong", True, "dot"), ("bahdanau", True, "general"), ("plain", True, "general"),
         ("transformer", False, "general")]


def tiny(decoder: str, bidirectional: bool = False, attention: str = "general", seed: int = 0):
    torch.manual_seed(seed)
    # the transformer's embeddings are its width (d_model = num_hiddens)
    config = ModelConfig(decoder, embed_size=12 if decoder == "transformer" else 8, num_hiddens=12,
                         num_layers=2, dropout=0.1, bidirectional=bidirectional, attention=attention,
                         num_heads=3, ffn_hiddens=20)
    return build_model(config, SRC_VOCAB, TGT_VOCAB).eval()


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    src_valid_lens = torch.tensor([6, 2, 1, 4])
    src = torch.randint(4, SRC_VOCAB, (4, 6), generator=g)
    src[torch.arange(6) >= src_valid_lens[:, None]] = 0  # padding
    tgt_in = torch.randint(4, TGT_VOCAB, (4, 5), generator=g)
    return src, src_valid_lens, tgt_in


@pytest.mark.parametrize("decoder,bidirectional,attention", CASES)
def test_forward_shapes_and_weights(decoder, bidirectional, attention):
    model = tiny(decoder, bidirectional, attention)
    src, src_valid_lens, tgt_in = batch()
    logits, weights = model(src, src_valid_lens, tgt_in)
    assert logits.shape == (4, 5, TGT_VOCAB)
    if decoder == "plain":
        assert weights is None
        return
    assert weights.shape == (4, 5, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 5))
    # no attention on padded source positions
    pad = torch.arange(6) >= src_valid_lens[:, None]
    assert (weights.masked_select(pad[:, None, :].expand_as(weights)) == 0).all()


@pytest.mark.parametrize("decoder,bidirectional,attention", CASES)
def test_extra_source_padding_changes_nothing(decoder, bidirectional, attention):
    model = tiny(decoder, bidirectional, attention)
    src, src_valid_lens, tgt_in = batch()
    logits, weights = model(src, src_valid_lens, tgt_in)
    padded = torch.cat([src, torch.full((4, 3), 7)], 1)  # garbage after the valid lengths
    logits2, weights2 = model(padded, src_valid_lens, tgt_in)
    torch.testing.assert_close(logits2, logits, atol=1e-5, rtol=1e-5)
    if weights is not None:
        torch.testing.assert_close(weights2[..., :6], weights, atol=1e-6, rtol=1e-5)
        assert (weights2[..., 6:] == 0).all()


def test_encoder_final_state_is_at_the_last_valid_step():
    torch.manual_seed(0)
    encoder = Seq2SeqEncoder(SRC_VOCAB, 8, 12, 2).eval()
    src, src_valid_lens, _ = batch()
    memory = encoder(src, src_valid_lens)
    assert memory.outputs.shape == (4, 6, 12) and memory.state[0].shape == (2, 4, 12)
    for i, length in enumerate(src_valid_lens.tolist()):
        alone = encoder(src[i : i + 1, :length], torch.tensor([length]))
        torch.testing.assert_close(memory.state[0][:, i], alone.state[0][:, 0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(memory.state[1][:, i], alone.state[1][:, 0], atol=1e-6, rtol=1e-5)
        # top-layer output at the last valid step is the top hidden state
        torch.testing.assert_close(memory.outputs[i, length - 1], memory.state[0][-1, i])
        assert (memory.outputs[i, length:] == 0).all()


def test_bidirectional_encoder_projects_to_num_hiddens():
    torch.manual_seed(0)
    encoder = Seq2SeqEncoder(SRC_VOCAB, 8, 12, 3, bidirectional=True).eval()
    src, src_valid_lens, _ = batch()
    memory = encoder(src, src_valid_lens)
    assert memory.outputs.shape == (4, 6, 12)
    assert memory.state[0].shape == memory.state[1].shape == (3, 4, 12)
    assert (memory.outputs[1, 2:] == 0).all()


@pytest.mark.parametrize("decoder,bidirectional,attention", CASES)
def test_step_equals_teacher_forced_forward(decoder, bidirectional, attention):
    model = tiny(decoder, bidirectional, attention)
    src, src_valid_lens, tgt_in = batch()
    logits, weights = model(src, src_valid_lens, tgt_in)
    memory = model.encode(src, src_valid_lens)
    state = model.decoder.init_state(memory)
    for t in range(tgt_in.shape[1]):
        step_logits, state, step_weights = model.decoder.step(tgt_in[:, t], state, memory)
        torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
        if weights is None:
            assert step_weights is None
        else:
            torch.testing.assert_close(step_weights, weights[:, t], atol=1e-6, rtol=1e-5)


def test_luong_dot_and_general_differ_and_general_has_W_a():
    dot, general = tiny("luong", attention="dot"), tiny("luong", attention="general")
    assert not hasattr(dot.decoder, "W_a") and general.decoder.W_a.weight.shape == (12, 12)
    assert isinstance(dot.decoder, LuongDecoder)


def test_build_model_picks_the_decoder_and_keeps_the_config():
    for name, cls in (("plain", PlainDecoder), ("bahdanau", BahdanauDecoder), ("luong", LuongDecoder),
                      ("transformer", TransformerDecoder)):
        model = tiny(name)
        assert isinstance(model, Seq2Seq) and isinstance(model.decoder, cls)
        assert model.config.decoder == name
    config = ModelConfig("luong", bidirectional=True)
    assert ModelConfig(**json.loads(json.dumps(dataclasses.asdict(config)))) == config


def test_training_mode_dropout_is_active():
    model = tiny("luong").train()
    src, src_valid_lens, tgt_in = batch()
    torch.manual_seed(1)
    a, _ = model(src, src_valid_lens, tgt_in)
    torch.manual_seed(2)
    b, _ = model(src, src_valid_lens, tgt_in)
    assert not torch.allclose(a, b)


def test_gradients_reach_every_parameter():
    for name in ("plain", "bahdanau", "luong", "transformer"):
        model = tiny(name, bidirectional=name != "transformer").train()
        src, src_valid_lens, tgt_in = batch()
        logits, _ = model(src, src_valid_lens, tgt_in)
        logits.sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, f"{name}: no gradient for {missing}"


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="decoder"):
        ModelConfig("gru")
    with pytest.raises(ValueError, match="attention"):
        ModelConfig("luong", attention="concat")
    with pytest.raises(ValueError, match="num_layers"):
        ModelConfig("luong", num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig("luong", dropout=1.5)
    with pytest.raises(TypeError, match="config"):
        build_model({"decoder": "luong"}, 10, 10)
    with pytest.raises(ValueError, match="tgt_vocab_size"):
        build_model(ModelConfig("luong"), 10, 0)


def test_input_errors_name_the_argument():
    model = tiny("luong")
    src, src_valid_lens, tgt_in = batch()
    with pytest.raises(ValueError, match=r"src_valid_lens must have shape \(batch,\) = \(4,\)"):
        model(src, src_valid_lens[:3], tgt_in)
    with pytest.raises(ValueError, match="src_valid_lens must be in"):
        model(src, torch.tensor([7, 2, 1, 4]), tgt_in)
    with pytest.raises(ValueError, match="src_valid_lens must be in"):
        model(src, torch.tensor([0, 2, 1, 4]), tgt_in)
    with pytest.raises(TypeError, match="src must be"):
        model(src.float(), src_valid_lens, tgt_in)
    with pytest.raises(TypeError, match="src_valid_lens must hold integers; got dtype torch.float32"):
        model(src, src_valid_lens.float(), tgt_in)
    with pytest.raises(ValueError, match="tgt_in"):
        model(src, src_valid_lens, tgt_in[:2])
    with pytest.raises(ValueError, match="tokens"):
        memory = model.encode(src, src_valid_lens)
        model.decoder.step(tgt_in, model.decoder.init_state(memory), memory)


def test_autocast_bf16_on_cpu_runs(cpu_bf16_lstm):
    model = tiny("luong", bidirectional=True)
    src, src_valid_lens, tgt_in = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, weights = model(src, src_valid_lens, tgt_in)
    assert torch.isfinite(logits.float()).all() and weights.shape == (4, 5, 6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("decoder", ["plain", "bahdanau", "luong", "transformer"])
def test_cuda_bf16_autocast_matches_fp32(decoder):
    model = tiny(decoder, bidirectional=decoder != "transformer").cuda()
    src, src_valid_lens, tgt_in = (t.cuda() for t in batch())
    reference, _ = model(src, src_valid_lens, tgt_in)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits, _ = model(src, src_valid_lens, tgt_in)
    torch.testing.assert_close(logits.float(), reference, atol=0.05, rtol=0.05)


@pytest.mark.parametrize(("decoder", "bidirectional", "attention"), CASES)
def test_every_decoder_is_a_decoder_and_memory_selects_sentences(decoder, bidirectional, attention):
    """The beam search repeats each sentence's memory K times with ``Memory.index_select``."""
    model = tiny(decoder, bidirectional, attention)
    assert isinstance(model.decoder, Decoder)
    src, src_valid_lens, _ = batch()
    memory = model.encode(src, src_valid_lens)
    assert isinstance(memory, Memory)
    rows = torch.tensor([2, 0, 2])
    picked = memory.index_select(rows)
    torch.testing.assert_close(picked.outputs, memory.outputs[rows])
    if memory.state is None:  # the transformer's encoder hands over its outputs only
        assert picked.state is None
    else:
        torch.testing.assert_close(picked.state[0], memory.state[0][:, rows])
        torch.testing.assert_close(picked.state[1], memory.state[1][:, rows])
    assert picked.valid_lens.tolist() == [1, 6, 1]
