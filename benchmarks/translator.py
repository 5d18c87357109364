"""Our translator vs the d2l reference, same data and device: training throughput, or time to quality.

    python benchmarks/translator.py --smoke            # seconds, CPU (the test suite runs this)
    python benchmarks/translator.py                    # 256/256 x 2 layers, batch 128
    python benchmarks/translator.py --decoder bahdanau --device cuda --batch-size 256
    python benchmarks/translator.py --device cuda --profile-steps profile.txt  # + where a step's time goes
    python benchmarks/translator.py --time-to-quality 10 --data PATH/fra.txt --threads 2
    python benchmarks/translator.py --time-to-quality 0.05 --smoke   # seconds (the test suite runs this)

Ours: ``utils.seq2seq`` (packed LSTM encoder; Luong decoder by default, whose
teacher-forced pass is one LSTM call plus batched attention) trained as
``utils.training`` does: AdamW, ``clip_grad_norm_``, ``masked_cross_entropy``, bf16
autocast on CUDA (``--amp off`` for fp32 everywhere).

d2l: ``d2l.Seq2SeqEncoder`` (a **GRU**, as d2l 1.0.3 ships it, reading the
padding too) and the d2l book's ``Seq2SeqAttentionDecoder`` written out below in
d2l's style: ``d2l.AdditiveAttention``, the context concatenated to the
embedding, one ``nn.GRU`` call per target step in a Python loop. Trained as
d2l's ``Trainer`` does: Adam, d2l's gradient clipping and padding-masked loss, fp32.

Throughput (the default): both see the same length-bucketed batches of
``TranslationData.batches``; the first ``--warmup`` steps are not timed.
Tokens/s counts target tokens (without padding) trained on per second.

Time to quality (``--time-to-quality MINUTES``): each recipe trains for the same
wall-clock minutes on the same data (the ``cpu-real`` preset's, or ``--data``,
built once: same splits, same vocabularies), then greedy-decodes the whole test
split, scored identically (sacreBLEU, single- and multi-reference). Ours is the
``cpu-real`` preset (model and ``TrainConfig``) run by ``utils.training.train``; its
cosine schedule needs a step count, so a throwaway copy is timed for a few steps
first and ``steps`` is set to fill the budget. d2l is the book's recipe (embed
256, hidden 256, 2 layers, dropout 0.2, Adam lr 0.005, clip 1, batch 128) and
trains, on the same data, for as long as ours measurably trained.
"""

from __future__ import annotations

import argparse
import json
import math
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
    """One training step exactly as ``utils.training.train`` takes it (minus logging and checkpoints)."""
    from utils.training import TrainConfig
    from utils.training.loop import build_optimizer, train_step

    config = TrainConfig(lr=2e-3, clip_norm=1.0)
    optimizer, scheduler = build_optimizer(model, config, device)

    def step(batch) -> None:
        train_step(model, batch, optimizer, scheduler, config, use_amp)

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


PROFILED_STEPS = 3


def profile_steps(step, data, args, device: torch.device, label: str) -> str:
    """``torch.profiler``'s table of ``PROFILED_STEPS`` training steps (after the timed ones).

    Sorted by the time each operator itself spent on the device (CUDA) or the CPU; the header
    line gives the wall time of the profiled steps beside the sum of device time: a device busy
    for a small part of the wall time means the step is bound by launching kernels, not by them.
    """
    from torch.profiler import ProfilerActivity, profile

    batches = batch_stream(data, args.batch_size, args.seed + 1)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_by = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    with profile(activities=activities) as profiler:
        started = time.perf_counter()
        for _ in range(PROFILED_STEPS):
            step(next(batches).to(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall_ms = 1000 * (time.perf_counter() - started)
    averages = profiler.key_averages()
    device_ms = sum(event.self_device_time_total for event in averages) / 1000 if device.type == "cuda" else None
    busy = f"; the device was busy {device_ms:.1f} ms of them" if device_ms is not None else ""
    header = f"{label}: {PROFILED_STEPS} steps took {wall_ms:.1f} ms of wall time (profiled){busy}"
    return header + "\n" + averages.table(sort_by=sort_by, row_limit=20) + "\n"


# ---------------------------------------------------------------- time to quality

# the d2l book's recipe (sec_seq2seq_attention); Adam lr 0.005 and clip 1 live in ``d2l_step_fn``
D2L_BOOK = dict(embed_size=256, num_hiddens=256, num_layers=2, dropout=0.2, batch_size=128)
D2L_SMOKE = dict(embed_size=32, num_hiddens=32, num_layers=2, dropout=0.2, batch_size=32)
# ours: a throwaway copy trains WARM steps (first-call costs: thread pools, allocator), then
# another times CALIBRATION steps in windows of WINDOW; the planned steps fill BUDGET_FILL of
# the budget, as ``train`` has no hard stop and a step time measured over seconds is not exact
CALIBRATION_WARM, CALIBRATION_STEPS, CALIBRATION_WINDOW, BUDGET_FILL = 3, 20, 5, 0.95
NUM_EXAMPLES = 3


def quality_data_spec(args):
    """The ``DataSpec`` both sides train on: ``--data`` / ``--generated`` / the preset's."""
    import dataclasses

    from utils.training import DataSpec, presets

    spec = presets("smoke" if args.smoke else "cpu-real")[2]
    if args.data:
        spec = DataSpec(source="file", path=args.data, max_pairs=spec.max_pairs, min_freq=spec.min_freq)
    elif args.generated:
        spec = DataSpec(source="generated", num_pairs=args.generated, min_freq=spec.min_freq)
    if args.max_pairs is not None and spec.source != "generated":
        spec = dataclasses.replace(spec, max_pairs=args.max_pairs)
    return spec


def d2l_greedy_decode(model, src: torch.Tensor, src_valid_lens: torch.Tensor, *, bos: int, eos: int,
                      max_len: int) -> list[list[int]]:
    """Batched greedy decoding with the d2l model: encode once, then feed back the argmax.

    ``src``: ``(batch, src_steps)`` source ids; ``src_valid_lens``: ``(batch,)``. Returns the
    target ids of each sentence without ``<eos>``, at most ``max_len`` of them (a sentence
    without ``<eos>`` by then is cut there). Runs in eval mode (no dropout), without grad.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # outputs (src_steps, batch, hiddens), state (layers, batch, hiddens)
            encoded = model.encoder(src, src_valid_lens)
            state = model.decoder.init_state(encoded, src_valid_lens)
            tokens = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)  # (batch, 1)
            finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
            steps = []
            for _ in range(max_len):
                logits, state = model.decoder(tokens, state)  # (batch, 1, vocab)
                tokens = logits.argmax(-1)  # (batch, 1)
                steps.append(tokens[:, 0])
                finished |= tokens[:, 0] == eos
                if bool(finished.all()):
                    break
    finally:
        model.train(was_training)
    rows = torch.stack(steps, 1).tolist()  # (batch, out_steps)
    return [row[: row.index(eos)] if eos in row else row for row in rows]


def d2l_decode_split(model, data, split: str, device: torch.device, batch_size: int = 64) -> list[list[int]]:
    """Greedy target ids for every pair of ``split``, in split order.

    The sentences are decoded in batches of similar source length: d2l's GRU encoder reads
    the padding, and it was trained on length-bucketed batches (little padding), so
    split-order batches would feed it padding it never learnt to ignore. Each batch may
    translate into ``2 * its longest source (+ <eos>) + 5`` tokens, as ``decode_split`` allows.
    """
    order = sorted(range(len(data.pairs[split])), key=lambda i: len(data.src_ids[split][i]))
    decoded: dict[int, list[int]] = {}
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = data.make_batch(split, indices).to(device)
        limit = int(batch.src_valid_lens.max()) * 2 + 5
        rows = d2l_greedy_decode(model, batch.src, batch.src_valid_lens, bos=data.tgt_vocab.bos,
                                 eos=data.tgt_vocab.eos, max_len=limit)
        decoded.update(zip(indices, rows, strict=True))
    return [decoded[i] for i in range(len(order))]


def score_decoded(data, split: str, decoded: list[list[int]]):
    """The ``BleuResult`` of target ids for every pair of ``split``, scored as ``bleu_on_split`` does."""
    from utils.data import tokenize
    from utils.seq2seq import detokenize
    from utils.training.evaluation import references_by_source, score_translations

    pairs = data.pairs[split]
    hypotheses = [detokenize(data.tgt_vocab.decode(ids)) for ids in decoded]
    references = [detokenize(tokenize(fr)) for _, fr in pairs]
    return score_translations([en for en, _ in pairs], hypotheses, references,
                              all_references=references_by_source(pairs))


def mean_tokens_per_batch(data, batch_size: int, seed: int, max_len) -> float:
    """Target tokens (``<eos>`` included, as the loss counts them) per training batch, over an epoch."""
    batches = data.batch_indices("train", batch_size, shuffle=True, seed=seed, epoch=0, max_len=max_len)
    return sum(len(data.tgt_ids["train"][i]) + 1 for batch in batches for i in batch) / len(batches)


def plan_our_steps(model, data, config, seconds: float, workdir: Path, device: torch.device) -> dict:
    """How many steps of ``config`` fill ``seconds`` of training, timed on throwaway copies of ``model``.

    The timed steps are logged in windows of ``CALIBRATION_WINDOW``; each window's tokens/s
    gives seconds per target token, and their median (robust to a window slowed down by
    other work on the machine) times the epoch's mean tokens per batch gives the planned
    step time: the first batches of an epoch are a small sample of its lengths, so scaling
    by tokens is steadier than their plain mean step time.
    """
    import copy
    import dataclasses
    import statistics

    from utils.training import train

    train(copy.deepcopy(model), data, dataclasses.replace(config, steps=CALIBRATION_WARM), workdir / "warm",
          device=device, progress=False)
    timed = train(copy.deepcopy(model), data,
                  dataclasses.replace(config, steps=CALIBRATION_STEPS, log_every=CALIBRATION_WINDOW),
                  workdir / "calibration", device=device, progress=False)
    seconds_per_token = statistics.median(1 / entry["tokens_per_s"] for entry in timed["losses"])
    seconds_per_step = seconds_per_token * mean_tokens_per_batch(data, config.batch_size, config.seed,
                                                                 config.max_len)
    return {"steps": max(1, int(BUDGET_FILL * seconds / seconds_per_step)),
            "calibration_steps": CALIBRATION_STEPS, "calibration_warm_steps": CALIBRATION_WARM,
            "seconds_per_token": seconds_per_token, "planned_seconds_per_step": seconds_per_step,
            "budget_fill": BUDGET_FILL}


def train_ours_for(model, data, config, spec, seconds: float, device: torch.device) -> tuple[dict, dict]:
    """Train ``model`` with ``utils.training.train`` for about ``seconds``; (its metrics, the plan)."""
    import dataclasses
    import tempfile

    from utils.training import train

    with tempfile.TemporaryDirectory(prefix="time-to-quality-") as folder:
        plan = plan_our_steps(model, data, config, seconds, Path(folder), device)
        steps = plan["steps"]
        # the preset's warm-up is sized for its 5,000 steps: at most a tenth of a shorter run
        config = dataclasses.replace(config, steps=steps, warmup_steps=min(config.warmup_steps, steps // 10),
                                     log_every=min(config.log_every, steps), eval_every=0, eval_sentences=0,
                                     checkpoint_every=0)
        started = time.perf_counter()
        metrics = train(model, data, config, Path(folder) / "ours", device=device, progress=False,
                        data_spec=spec)
        metrics["call_seconds"] = time.perf_counter() - started  # + set-up and the final checkpoint
    return metrics, plan


def train_d2l_for(model, data, batch_size: int, seconds: float, seed: int, device: torch.device) -> dict:
    """Train the d2l model on the batch stream until ``seconds`` of training are spent.

    A step starts only while more than half a mean step time remains, so the total lands
    within about half a step of ``seconds`` (the clock includes making the batches, as
    ``train``'s does).
    """
    step = d2l_step_fn(model, data.tgt_vocab.pad)
    batches = batch_stream(data, batch_size, seed)
    model.train()
    steps, tokens, elapsed = 0, 0, 0.0
    started = time.perf_counter()
    while steps == 0 or elapsed + elapsed / steps / 2 < seconds:
        batch = next(batches)
        step(batch.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        steps += 1
        tokens += int(batch.tgt_valid_lens.sum())
        elapsed = time.perf_counter() - started
    return {"steps": steps, "train_tokens": tokens, "train_seconds": elapsed, "tokens_per_s": tokens / elapsed}


def example_rows(n: int, count: int = NUM_EXAMPLES) -> list[int]:
    """``count`` indices spread over a split of ``n`` pairs (the first, ..., the last)."""
    if n <= count:
        return list(range(n))
    return sorted({(n - 1) * k // max(count - 1, 1) for k in range(count)})


def format_quality_table(rows: list[dict]) -> str:
    header = (f"{'model':<36} {'parameters':>11} {'steps':>7} {'epochs':>7} {'train min':>9} {'tokens/s':>9} "
              f"{'BLEU':>6} {'multi-ref':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['model']:<36} {row['parameters']:>11,} {row['steps']:>7,} {row['epochs']:>7.2f} "
                     f"{row['train_seconds'] / 60:>9.2f} {row['tokens_per_s']:>9,.0f} {row['bleu']:>6.1f} "
                     f"{row['multi_bleu']:>9.1f}")
    return "\n".join(lines)


def quality_row(label: str, model, steps: int, batch_size: int, data, trained: dict, result) -> dict:
    """One table row (and its JSON): the training figures and the test scores."""
    return {"model": label, "parameters": sum(p.numel() for p in model.parameters()), "steps": steps,
            "batch_size": batch_size, "epochs": steps * batch_size / len(data.pairs["train"]),
            "train_seconds": trained["train_seconds"], "train_tokens": trained["train_tokens"],
            "tokens_per_s": trained["train_tokens"] / trained["train_seconds"], "bleu": result.bleu,
            "multi_bleu": result.multi_bleu, "signature": result.signature,
            "multi_signature": result.multi_signature, "test_sentences": result.num_sentences}


def run_ours(args, data, spec, seconds: float, device: torch.device) -> tuple[dict, object, dict]:
    """Our preset trained for ``seconds`` and scored on the test split: (table row, result, plan)."""
    import dataclasses

    from utils.runtime import seed_everything
    from utils.seq2seq import build_model
    from utils.training import bleu_on_split, presets

    recipe = "smoke" if args.smoke else "cpu-real"
    model_config, config, _ = presets(recipe, args.decoder)
    config = dataclasses.replace(config, seed=args.seed)
    seed_everything(args.seed)
    model = build_model(model_config, len(data.src_vocab), len(data.tgt_vocab))
    metrics, plan = train_ours_for(model, data, config, spec, seconds, device)
    plan["call_seconds"] = metrics["call_seconds"]
    result = bleu_on_split(model, data, "test")
    label = f"ours: {args.decoder.capitalize()} ({recipe} recipe)"
    return quality_row(label, model, metrics["steps"], config.batch_size, data, metrics, result), result, plan


def run_d2l(args, data, seconds: float, device: torch.device) -> tuple[dict, object]:
    """The d2l book's recipe trained for ``seconds`` and scored on the test split: (table row, result)."""
    from utils.runtime import seed_everything

    book = D2L_SMOKE if args.smoke else D2L_BOOK
    seed_everything(args.seed)
    model = d2l_model(len(data.src_vocab), len(data.tgt_vocab), book["embed_size"], book["num_hiddens"],
                      book["num_layers"], tgt_pad=data.tgt_vocab.pad, dropout=book["dropout"]).to(device)
    first = data.make_batch("train", range(2)).to(device)
    model(first.src, first.tgt_in, first.src_valid_lens)  # materialise d2l's lazy layers before Adam sees them
    seed_everything(args.seed)
    trained = train_d2l_for(model, data, book["batch_size"], seconds, args.seed, device)
    result = score_decoded(data, "test", d2l_decode_split(model, data, "test", device))
    label = f"d2l: Bahdanau GRU ({'smoke sizes' if args.smoke else 'book recipe'})"
    return quality_row(label, model, trained["steps"], book["batch_size"], data, trained, result), result


def print_quality_report(header: str, rows: list[dict], plan: dict, examples: list[dict]) -> None:
    print(header)
    print(format_quality_table(rows))
    print(f"ours: {plan['steps']:,} steps planned from {plan['calibration_steps']} timed steps of a throwaway "
          f"copy ({1000 * plan['planned_seconds_per_step']:.1f} ms/step); d2l trained for ours' measured "
          "minutes; test sacreBLEU, greedy")
    for key, what in (("signature", "single reference"), ("multi_signature", "multi-reference")):
        signatures = dict.fromkeys(row[key] for row in rows)  # one, unless the two were scored differently
        print(f"signature ({what}): {' | '.join(signatures)}")
    print("examples (test split):")
    for example in examples:
        for key in ("source", "reference", "ours", "d2l"):
            print(f"  {key + ':':<10} {example[key]}")


def time_to_quality(args) -> int:
    """Train both recipes for ``args.time_to_quality`` minutes each, then print their test BLEU."""
    import dataclasses

    from utils.runtime import choose_device
    from utils.training import build_data
    from utils.training.metrics_file import cpu_name

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    spec = quality_data_spec(args)
    data = build_data(spec)  # once: both sides get the same splits and vocabularies
    ours_row, ours, plan = run_ours(args, data, spec, 60 * args.time_to_quality, device)
    # the minutes ours measurably trained, not the nominal budget: an equal-time comparison
    d2l_row, d2l = run_d2l(args, data, ours_row["train_seconds"], device)

    rows = [ours_row, d2l_row]
    examples = [{"source": ours.sources[i], "reference": ours.references[i], "ours": ours.hypotheses[i],
                 "d2l": d2l.hypotheses[i]} for i in example_rows(ours.num_sentences)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    header = (f"translator time to quality: {spec.describe()} ({len(data.pairs['train']):,} train / "
              f"{len(data.pairs['test']):,} test pairs), {device.type} ({name}{threads}), "
              f"{args.time_to_quality:g} min of training each")
    print_quality_report(header, rows, plan, examples)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "mode": "time-to-quality", "budget_minutes": args.time_to_quality, "header": header, "rows": rows,
            "examples": examples, "calibration": plan,
            "data": {**dataclasses.asdict(spec), "path": file_name(spec.path),
                     "sizes": {k: len(v) for k, v in data.pairs.items()}},
            "device": name, "threads": torch.get_num_threads(), "args": recorded_args(args),
        }, indent=2) + "\n")
    return 0


def file_name(path: str | None) -> str | None:
    """A data file as results record it: its name only (no machine's folders in committed files)."""
    return None if path is None else Path(path).name


def recorded_args(args: argparse.Namespace) -> dict:
    return {**vars(args), "data": file_name(args.data)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/translator.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few steps (seconds on a CPU)")
    parser.add_argument("--decoder", choices=("luong", "bahdanau", "plain", "transformer"), default="luong",
                        help="our decoder (default luong; transformer: encoder and decoder, 4 heads, feed-forward "
                             "4 x hidden); the d2l side is always its Bahdanau decoder")
    parser.add_argument("--generated", type=int, metavar="N", help="pairs of the generated corpus")
    parser.add_argument("--data", metavar="PATH", help="a local fra.txt / fra-eng.zip instead")
    parser.add_argument("--max-pairs", type=int, default=None, metavar="N", help="first N pairs of --data")
    for name in ("embed-size", "num-hiddens", "num-layers", "batch-size", "steps", "warmup"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--amp", choices=("bf16", "off"),
                        help="our side's autocast on CUDA (default bf16; d2l trains in fp32)")
    parser.add_argument("--time-to-quality", type=float, metavar="MINUTES",
                        help="train each recipe for MINUTES, then compare test BLEU (instead of throughput)")
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--profile-steps", metavar="PATH",
                        help=f"after timing, profile {PROFILED_STEPS} steps of each model; write the tables to PATH")
    args = parser.parse_args(argv)
    if args.time_to_quality is not None:
        # the recipes fix these; silently ignoring them would misreport what was compared
        given = [name for name in ("embed_size", "num_hiddens", "num_layers", "batch_size", "steps", "warmup",
                                   "amp", "profile_steps") if getattr(args, name) is not None]
        if given:
            parser.error(f"--{given[0].replace('_', '-')} is for the throughput mode, not --time-to-quality")
        if not (math.isfinite(args.time_to_quality) and args.time_to_quality > 0):
            parser.error(f"--time-to-quality must be a finite number of minutes > 0; got {args.time_to_quality}")
        return args
    if args.amp is None:
        args.amp = "bf16"
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
    if args.time_to_quality is not None:
        return time_to_quality(args)
    from utils.data import TranslationData, generated_splits, load_fra_eng, split_by_source
    from utils.runtime import choose_device, seed_everything
    from utils.seq2seq import ModelConfig, build_model
    from utils.training.metrics_file import cpu_name

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
             "bahdanau": "Bahdanau (LSTM, per-step loop)", "plain": "plain (LSTM, no attention)",
             "transformer": "Transformer (pre-LN, 4 heads)"}
    rows, profiles = [], []
    for label, model, step, precision in (
        (f"ours: {kinds[args.decoder]}", ours, our_step_fn(ours, use_amp, device), "bf16" if use_amp else "fp32"),
        ("d2l: Bahdanau (GRU, per-step loop)", reference, d2l_step_fn(reference, pad), "fp32"),
    ):
        seed_everything(args.seed)
        timing = time_training(step, data, args, device)
        rows.append({"model": label, "parameters": sum(p.numel() for p in model.parameters()),
                     "precision": precision, **timing})
        if args.profile_steps:
            profiles.append(profile_steps(step, data, args, device, f"{label}, {precision}"))
    ratio = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    print(f"translator training throughput: {described}, embed {args.embed_size}, hidden {args.num_hiddens} x "
          f"{args.num_layers} layer(s), batch {args.batch_size}, {args.steps} timed steps (+{args.warmup} "
          f"warm-up), {device.type} ({name}{threads})")
    print(format_table(rows, ratio))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ratio": ratio, "args": recorded_args(args),
                                               "device": name}, indent=2) + "\n")
    if args.profile_steps:
        Path(args.profile_steps).write_text("\n".join(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
