"""The Transformer translator: config, masks, the key/value cache, old checkpoints, a tiny trained model.

(Shapes, step == forward, greedy/beam properties run for every decoder in test_seq2seq_model.py and
test_seq2seq_decoding.py; the layers against torch's in test_transformer_layers.py.)
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from overfit import overfit_batch
from torch.overrides import TorchFunctionMode

from utils.data import TranslationData, generate_corpus
from utils.data.splits import Splits
from utils.seq2seq import (
    ModelConfig,
    TransformerDecoder,
    TransformerEncoder,
    TransformerState,
    beam_search,
    build_model,
    greedy_decode,
    head_alignments,
    translate,
)

SRC_VOCAB, TGT_VOCAB, BOS, EOS = 23, 29, 1, 2


def tiny(seed: int = 0, **changes):
    torch.manual_seed(seed)
    values = dict(embed_size=16, num_hiddens=16, num_layers=2, dropout=0.1, num_heads=4, ffn_hiddens=24)
    return build_model(ModelConfig("transformer", **{**values, **changes}), SRC_VOCAB, TGT_VOCAB).eval()


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    src_valid_lens = torch.tensor([6, 2, 1, 4])
    src = torch.randint(4, SRC_VOCAB, (4, 6), generator=g)
    src[torch.arange(6) >= src_valid_lens[:, None]] = 0
    return src, src_valid_lens, torch.randint(4, TGT_VOCAB, (4, 7), generator=g)


def close(got, expected):
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_config_fields_and_their_errors():
    config = ModelConfig("transformer", embed_size=32, num_hiddens=32, num_heads=8)
    assert config.ffn_size == 128 and config.norm_first
    assert ModelConfig("transformer", embed_size=32, num_hiddens=32, ffn_hiddens=48).ffn_size == 48
    with pytest.raises(ValueError, match="embed_size=16 must equal num_hiddens=32"):
        ModelConfig("transformer", embed_size=16, num_hiddens=32)
    with pytest.raises(ValueError, match="num_hiddens=30 .* must be divisible by num_heads=4"):
        ModelConfig("transformer", embed_size=30, num_hiddens=30)
    with pytest.raises(ValueError, match="bidirectional=True is for the LSTM encoder"):
        ModelConfig("transformer", bidirectional=True)
    with pytest.raises(ValueError, match="num_heads must be an int >= 1; got 0"):
        ModelConfig("transformer", num_heads=0)
    with pytest.raises(ValueError, match="ffn_hiddens must be an int >= 1 or None; got -1"):
        ModelConfig("transformer", ffn_hiddens=-1)
    with pytest.raises(TypeError, match="norm_first must be a bool"):
        ModelConfig("transformer", norm_first=1)
    ModelConfig("luong", embed_size=8, num_hiddens=30)  # the LSTM decoders ignore the heads


def test_repr_shows_the_transformer_fields_only_for_the_transformer():
    # chapter 06 prints an LSTM config: its stored output stays what it was before the transformer
    assert repr(ModelConfig("plain", embed_size=64, num_hiddens=128, num_layers=1, dropout=0.0)) == (
        "ModelConfig(decoder='plain', embed_size=64, num_hiddens=128, num_layers=1, dropout=0.0, "
        "bidirectional=False, attention='general')")
    assert repr(ModelConfig("transformer", embed_size=32, num_hiddens=32)).endswith(
        "attention='general', num_heads=4, ffn_hiddens=None, norm_first=True)")


def test_the_model_is_a_transformer_with_the_configured_sizes():
    model = tiny(num_layers=3)
    assert isinstance(model.encoder, TransformerEncoder) and isinstance(model.decoder, TransformerDecoder)
    assert len(model.encoder.layers) == len(model.decoder.layers) == 3
    layer = model.decoder.layers[0]
    assert layer.num_heads == 4 and layer.ffn.linear1.out_features == 24 and layer.norm_first
    assert not tiny(norm_first=False).decoder.layers[0].norm_first
    assert not any("norm." in name for name, _ in tiny(norm_first=False).named_parameters())  # no final norm
    assert model.encoder.embedding.weight[0].abs().sum() == 0  # the padding embedding stays zero


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_source_padding_does_not_change_the_real_outputs(norm_first):
    model = tiny(norm_first=norm_first)
    src, src_valid_lens, tgt_in = batch()
    logits, weights = model(src, src_valid_lens, tgt_in)
    garbage = torch.cat([src, torch.full((4, 3), 7)], 1)  # other tokens in the padding, and more of it
    garbage[torch.arange(9) >= src_valid_lens[:, None]] = 7
    logits2, weights2 = model(garbage, src_valid_lens, tgt_in)
    close(logits2, logits)
    close(weights2[..., :6], weights)
    assert (weights2[..., 6:] == 0).all()
    memory = model.encode(garbage, src_valid_lens)
    assert memory.state is None and (memory.outputs[1, 2:] == 0).all()


class _CountedLengthChecks(TorchFunctionMode):
    """Counts ``torch.aminmax``: how ``utils.validate.require_lengths`` reads a batch's lengths
    (one device synchronisation on a GPU)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += func is torch.aminmax
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("num_layers", [1, 3])
def test_the_source_lengths_are_checked_once_not_in_every_layer(num_layers):
    model = tiny(num_layers=num_layers)
    src, src_valid_lens, tgt_in = batch()
    with torch.no_grad(), _CountedLengthChecks() as counted:
        model(src, src_valid_lens, tgt_in)
    assert counted.calls == 1
    with pytest.raises(ValueError, match="src_valid_lens"):  # and the one check still says what is wrong
        model(src, src_valid_lens + 1, tgt_in)


def test_future_target_tokens_do_not_change_earlier_outputs():
    model = tiny()
    src, src_valid_lens, tgt_in = batch()
    logits, _ = model(src, src_valid_lens, tgt_in)
    changed = tgt_in.clone()
    changed[:, 4:] = 5
    logits2, _ = model(src, src_valid_lens, changed)
    close(logits2[:, :4], logits[:, :4])
    assert not torch.allclose(logits2[:, 4:], logits[:, 4:], atol=1e-3)


def test_word_order_matters():
    """With positional encodings, the same source words in another order give another translation."""
    model = tiny()
    src, src_valid_lens, tgt_in = batch()
    swapped = src.clone()
    swapped[0, [0, 1]] = src[0, [1, 0]]
    assert not torch.allclose(model(swapped, src_valid_lens, tgt_in)[0][0], model(src, src_valid_lens, tgt_in)[0][0],
                              atol=1e-3)


def test_cached_steps_equal_full_recomputation():
    """Each decoding step with the key/value cache gives the logits of recomputing the whole prefix."""
    model = tiny()
    src, src_valid_lens, tgt_in = batch()
    memory = model.encode(src, src_valid_lens)
    state = model.decoder.init_state(memory)
    assert isinstance(state, TransformerState) and state.steps == 0
    with torch.no_grad():
        for t in range(tgt_in.shape[1]):
            logits, state, weights = model.decoder.step(tgt_in[:, t], state, memory)
            recomputed, recomputed_weights = model(src, src_valid_lens, tgt_in[:, : t + 1])  # no cache
            close(logits, recomputed[:, -1])
            close(weights, recomputed_weights[:, -1])
    assert state.steps == tgt_in.shape[1]
    assert state.layers[0].self_k.shape == (4, 4, tgt_in.shape[1], 4)  # (batch, heads, steps, head_dim)
    assert state.layers[0].cross_k.shape == (4, 4, 6, 4)


def test_reorder_state_selects_the_caches_of_the_given_rows():
    model = tiny()
    src, src_valid_lens, tgt_in = batch()
    memory = model.encode(src, src_valid_lens)
    _, state, _ = model.decoder(tgt_in[:, :3], model.decoder.init_state(memory), memory)
    rows = torch.tensor([2, 2, 0])
    reordered = model.decoder.reorder_state(state, rows)
    for before, after in zip(state.layers, reordered.layers, strict=True):
        for a, b in zip(before, after, strict=True):
            assert torch.equal(b, a[rows])
    picked = memory.index_select(rows)
    logits, _, _ = model.decoder(tgt_in[rows, 3:4], reordered, picked)
    close(logits[:, 0], model(src[rows], src_valid_lens[rows], tgt_in[rows, :4])[0][:, 3])


def test_head_weights_are_per_head_and_average_to_the_weights():
    model = tiny()
    src, src_valid_lens, tgt_in = batch()
    _, weights = model(src, src_valid_lens, tgt_in)
    heads = model.decoder.head_weights
    assert heads.shape == (4, 4, 7, 6)
    close(heads.mean(1), weights)
    close(heads.sum(-1), torch.ones(4, 4, 7))
    assert not torch.allclose(heads[:, 0], heads[:, 1])  # the heads look at different things


def test_old_lstm_checkpoints_load_without_the_transformer_fields(tmp_path):
    """A model config saved before the transformer existed has no num_heads/ffn_hiddens/norm_first."""
    from utils.data import Vocab
    from utils.training import load_checkpoint
    from utils.training.checkpoint import FORMAT_VERSION, save_atomic

    src_vocab = Vocab([["a", "b"]], min_freq=1)
    config = ModelConfig("luong", embed_size=8, num_hiddens=8, num_layers=1)
    model = build_model(config, len(src_vocab), len(src_vocab))
    old = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("num_heads", "ffn_hiddens", "norm_first")}
    save_atomic({"format": FORMAT_VERSION, "model_state": model.state_dict(), "model_config": old,
                 "src_vocab": src_vocab.to_dict(), "tgt_vocab": src_vocab.to_dict()}, tmp_path / "checkpoint.pt")
    loaded, *_ = load_checkpoint(tmp_path)
    assert loaded.config == config
    for (name, expected), actual in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name


def test_bf16_autocast_on_cpu_runs_and_beam_one_is_greedy():
    """No LSTM here, so no AVX-512 needed: the bf16 path runs on every CPU (and ties break alike)."""
    model = tiny(seed=3)
    src, src_valid_lens, tgt_in = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, weights = model(src, src_valid_lens, tgt_in)
        greedy = greedy_decode(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=10)
        beam = beam_search(model, src, src_valid_lens, bos=BOS, eos=EOS, max_len=10, beam_size=1)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
    assert weights.shape == (4, 7, 6) and beam[0] == greedy[0]


@pytest.fixture(scope="module")
def overfit():
    """A tiny Transformer trained on 48 generated pairs until it knows them (a few seconds)."""
    torch.manual_seed(0)
    data = TranslationData(Splits(generate_corpus(48, seed=0), [], []), min_freq=1)
    batch = data.make_batch("train", range(48))
    config = ModelConfig("transformer", embed_size=32, num_hiddens=32, num_layers=1, dropout=0.0, num_heads=4,
                         ffn_hiddens=64)
    model = build_model(config, len(data.src_vocab), len(data.tgt_vocab))
    return model, data, batch, overfit_batch(model, batch, max_steps=400)


def test_tiny_transformer_learns_its_training_pairs_greedy_and_beam(overfit):
    model, data, batch, losses = overfit
    assert losses[0] > 3.0 and losses[-1] < 0.01, (losses[0], losses[-1], len(losses))
    ids, weights = greedy_decode(model, batch.src, batch.src_valid_lens, bos=BOS, eos=EOS, max_len=20)
    assert ids == data.tgt_ids["train"]
    beam_ids, beam_weights = beam_search(model, batch.src, batch.src_valid_lens, bos=BOS, eos=EOS, max_len=20,
                                         beam_size=3)
    assert sum(a == b for a, b in zip(beam_ids, ids, strict=True)) >= 45
    for i, out in enumerate(beam_ids):
        assert beam_weights[i].shape == (len(out), int(batch.src_valid_lens[i]))


def test_translate_gives_alignment_rows_per_output_token(overfit):
    model, data, _, _ = overfit
    english = [en for en, _ in data.pairs["train"][:3]]
    for beam_size in (1, 3):
        for result, ids in zip(translate(model, english, data.src_vocab, data.tgt_vocab, beam_size=beam_size),
                               data.tgt_ids["train"][:3], strict=True):
            assert result.tokens == data.tgt_vocab.decode(ids)
            assert result.weights.shape == (len(result.tokens), len(result.source_tokens))
            close(result.weights.sum(-1), torch.ones(len(result.tokens)))


def test_head_alignments_are_the_heads_behind_a_translations_weights(overfit):
    model, data, _, _ = overfit
    result = translate(model, [data.pairs["train"][0][0]], data.src_vocab, data.tgt_vocab)[0]
    heads = head_alignments(model, result, data.src_vocab, data.tgt_vocab)
    assert heads.shape == (4, len(result.tokens), len(result.source_tokens))
    torch.testing.assert_close(heads.mean(0), result.weights.float(), atol=1e-5, rtol=1e-4)
