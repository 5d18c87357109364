"""Training throughput: this course's translator vs the d2l reference, same data, steps and device.

    python benchmarks/translator.py --smoke            # seconds, CPU (the test suite runs this)
    python benchmarks/translator.py                    # 256/256 x 2 layers, batch 128
    python benchmarks/translator.py --decoder bahdanau --device cuda --batch-size 256

Ours: ``utils.seq2seq`` (packed LSTM encoder; Luong decoder by default, whose
teacher-forced pass is one LSTM call plus batched attention) trained as
``utils.train`` does: AdamW, ``clip_grad_norm_``, ``masked_cross_entropy``, bf16
autocast on CUDA (``--amp off`` for fp32 everywhere).

d2l: ``d2l.Seq2SeqEncoder`` (a **GRU**, as d2l 1.0.3 ships it, reading the
padding too) and the d2l book's ``Seq2SeqAttentionDecoder`` written out below in
d2l's style: ``d2l.AdditiveAttention``, the context concatenated to the
embedding, one ``nn.GRU`` call per target step in a Python loop. Trained as
d2l's ``Trainer`` does: Adam, d2l's gradient clipping and padding-masked loss, fp32.

Both see the same length-bucketed batches of ``TranslationData.batches``; the
first ``--warmup`` steps are not timed. Tokens/s counts target tokens (without
padding) trained on per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

import torch  # noqa: E402
from torch import nn  # noqa: E402

SMOKE = dict(generated=2000, embed_size=32, num_hiddens=32, num_layers=1, batch_size=32, steps=8, warmup=2)
FULL = dict(generated=20000, embed_size=256, num_hiddens=256, num_layers=2, batch_size=128, steps=30,
            warmup=5)


# ---------------------------------------------------------------- the d2l reference


def d2l_model(src_vocab_size: int, tgt_vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
              tgt_pad: int, dropout: float = 0.0):
    """d2l's encoder + the book's Bahdanau decoder, in d2l's classes (imported here only)."""
    from d2l import torch as d2l

    class Seq2SeqAttentionDecoder(d2l.AttentionDecoder):
        """The d2l book's decoder (sec_seq2seq_attention), unchanged in substance."""

        def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
            super().__init__()
            self.attention = d2l.AdditiveAttention(num_hiddens, dropout)
            self.embedding = nn.Embedding(vocab_size, embed_size)
            self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
            self.dense = nn.LazyLinear(vocab_size)
            self.apply(d2l.init_seq2seq)

        def init_state(self, enc_outputs, enc_valid_lens):
            outputs, hidden_state = enc_outputs
            return (outputs.permute(1, 0, 2), hidden_state, enc_valid_lens)

        def forward(self, X, state):
            enc_outputs, hidden_state, enc_valid_lens = state
            X = self.embedding(X).permute(1, 0, 2)
            outputs, self._attention_weights = [], []
            for x in X:  # one target step at a time
                query = torch.unsqueeze(hidden_state[-1], dim=1)
                context = self.attention(query, enc_outputs, enc_outputs, enc_valid_lens)
                x = torch.cat((context, torch.unsqueeze(x, dim=1)), dim=-1)
                out, hidden_state = self.rnn(x.permute(1, 0, 2), hidden_state)
                outputs.append(out)
                self._attention_weights.append(self.attention.attention_weights)
            outputs = self.dense(torch.cat(outputs, dim=0))
            return outputs.permute(1, 0, 2), [enc_outputs, hidden_state, enc_valid_lens]

        @property
        def attention_weights(self):
            return self._attention_weights

    encoder = d2l.Seq2SeqEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout)
    decoder = Seq2SeqAttentionDecoder(tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout)
    return d2l.Seq2Seq(encoder, decoder, tgt_pad=tgt_pad, lr=0.005)


def d2l_step_fn(model, tgt_pad: int):
    """One d2l-style training step: Adam, d2l's padding-masked loss, d2l's gradient clipping."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)

    def step(batch) -> None:
        logits = model(batch.src, batch.tgt_in, batch.src_valid_lens)
        losses = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1),
                                             reduction="none")
        mask = (batch.tgt_out.reshape(-1) != tgt_pad).float()
        loss = (losses * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        params = [p for p in model.parameters() if p.requires_grad]
        norm = torch.sqrt(sum(torch.sum(p.grad**2) for p in params))
        if norm > 1:
            for param in params:
                param.grad[:] *= 1 / norm
        optimizer.step()

    return step


# ---------------------------------------------------------------- ours


def our_step_fn(model, use_amp: bool, device: torch.device):
    """One training step as ``utils.train.loop`` takes it (minus logging and checkpoints)."""
    from utils.seq2seq import masked_cross_entropy

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def step(batch) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits, _ = model(batch.src, batch.src_valid_lens, batch.tgt_in)
        loss, _ = masked_cross_entropy(logits.float(), batch.tgt_out, batch.tgt_valid_lens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


# ---------------------------------------------------------------- timing


def batch_stream(data, batch_size: int, seed: int):
    """The training batches, epoch after epoch (the same for both models)."""
    epoch = 0
    while True:
        yield from data.batches("train", batch_size, shuffle=True, seed=seed, epoch=epoch)
        epoch += 1


def time_training(step, data, args, device: torch.device) -> dict:
    """Warm up, then time ``args.steps`` steps; tokens/s of target tokens."""
    batches = batch_stream(data, args.batch_size, args.seed)
    for _ in range(args.warmup):
        step(next(batches).to(device))
    timed = [next(batches) for _ in range(args.steps)]
    tokens = sum(int(batch.tgt_valid_lens.sum()) for batch in timed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for batch in timed:
        step(batch.to(device, non_blocking=True))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "seconds_per_step": seconds / args.steps}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/translator.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few steps (seconds on a CPU)")
    parser.add_argument("--decoder", choices=("luong", "bahdanau", "plain"), default="luong",
                        help="our decoder (default luong); the d2l side is always its Bahdanau decoder")
    parser.add_argument("--generated", type=int, metavar="N", help="pairs of the generated corpus")
    parser.add_argument("--data", metavar="PATH", help="a local fra.txt / fra-eng.zip instead")
    parser.add_argument("--max-pairs", type=int, default=None, metavar="N", help="first N pairs of --data")
    for name in ("embed-size", "num-hiddens", "num-layers", "batch-size", "steps", "warmup"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--amp", choices=("bf16", "off"), default="bf16",
                        help="our side's autocast on CUDA (d2l trains in fp32)")
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for key, value in (SMOKE if args.smoke else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("embed_size", "num_hiddens", "num_layers", "batch_size", "steps"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1; got {getattr(args, key)}")
    return args


def format_table(rows: list[dict], ratio: float) -> str:
    header = f"{'model':<50} {'parameters':>11} {'precision':>9} {'tokens/s':>10} {'ms/step':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['model']:<50} {row['parameters']:>11,} {row['precision']:>9} "
                     f"{row['tokens_per_s']:>10,.0f} {1000 * row['seconds_per_step']:>8.1f}")
    lines.append(f"ratio (ours / d2l tokens/s): {ratio:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from utils.data import TranslationData, generated_splits, load_fra_eng, split_by_source
    from utils.runtime import choose_device, seed_everything
    from utils.seq2seq import ModelConfig, build_model
    from utils.train.metrics_file import cpu_name

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    if args.data:
        data = TranslationData(split_by_source(load_fra_eng(args.data, max_pairs=args.max_pairs), seed=0))
        described = f"{Path(args.data).name} ({len(data.pairs['train']):,} training pairs)"
    else:
        data = TranslationData(generated_splits(args.generated, seed=0))
        described = f"generated corpus ({args.generated:,} pairs)"
    sizes = dict(embed_size=args.embed_size, num_hiddens=args.num_hiddens, num_layers=args.num_layers)
    use_amp = args.amp == "bf16" and device.type == "cuda"
    pad = data.tgt_vocab.pad

    seed_everything(args.seed)
    ours = build_model(ModelConfig(args.decoder, dropout=0.0, **sizes), len(data.src_vocab),
                       len(data.tgt_vocab)).to(device).train()
    seed_everything(args.seed)
    reference = d2l_model(len(data.src_vocab), len(data.tgt_vocab), tgt_pad=pad, **sizes).to(device).train()
    first = data.make_batch("train", range(2)).to(device)
    reference(first.src, first.tgt_in, first.src_valid_lens)  # materialise d2l's lazy layers

    kinds = {"luong": "Luong (LSTM, one call + batched attention)",
             "bahdanau": "Bahdanau (LSTM, per-step loop)", "plain": "plain (LSTM, no attention)"}
    rows = []
    for label, model, step, precision in (
        (f"ours: {kinds[args.decoder]}", ours, our_step_fn(ours, use_amp, device), "bf16" if use_amp else "fp32"),
        ("d2l: Bahdanau (GRU, per-step loop)", reference, d2l_step_fn(reference, pad), "fp32"),
    ):
        seed_everything(args.seed)
        timing = time_training(step, data, args, device)
        rows.append({"model": label, "parameters": sum(p.numel() for p in model.parameters()),
                     "precision": precision, **timing})
    ratio = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    print(f"translator training throughput: {described}, embed {args.embed_size}, hidden {args.num_hiddens} x "
          f"{args.num_layers} layer(s), batch {args.batch_size}, {args.steps} timed steps (+{args.warmup} "
          f"warm-up), {device.type} ({name}{threads})")
    print(format_table(rows, ratio))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ratio": ratio, "args": vars(args),
                                               "device": name}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
