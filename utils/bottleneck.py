"""The fixed-context bottleneck, measured: BLEU by source length, plain decoder vs Luong attention.

    python -m utils.bottleneck generated --out results/ --threads 2   # train both (a few minutes)
    python -m utils.bottleneck real --out results/                    # the shipped models (a minute)

``generated``: the plain and the Luong decoder, with the ``cpu`` preset's sizes, steps and
schedule (``--steps`` to change), each trained on the same generated corpus of sentences of
one to three clauses (``generated_splits(..., max_clauses=3)``, 4 to about 30 tokens), then
scored on its test split by source length.

``real``: the two shipped models (``utils.pretrained``, one recipe, only the decoder differs)
on the shipped held-out test split of the real fra-eng corpus (English sentences of 1 to 9
words), by source length.

Each writes ``bottleneck_<which>.json`` (every figure, the settings, the machine) and
``bottleneck_<which>.png`` into ``--out``. Standard library, torch and sacrebleu, plus
matplotlib for the figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from utils.data import Splits, TranslationData, generated_splits
from utils.pretrained import load_pretrained, pretrained_test_pairs
from utils.runtime import seed_everything
from utils.seq2seq import build_model
from utils.training import presets, train
from utils.training.evaluation import bleu_by_length, bleu_on_split, references_by_source
from utils.training.metrics_file import environment_info

DECODERS = ("plain", "luong")
# source tokens (punctuation included), inclusive
GENERATED_BUCKETS = ((4, 6), (7, 10), (11, 14), (15, 18), (19, 40))
REAL_BUCKETS = ((1, 4), (5, 5), (6, 6), (7, 7), (8, 12))


def by_length(model, data, buckets, *, beam_size: int = 1) -> dict:
    """Test BLEU of ``model`` on ``data``, overall and per source-length bucket."""
    result = bleu_on_split(model, data, "test", beam_size=beam_size, batch_size=256)
    return {"bleu": round(result.bleu, 2), "multi_bleu": round(result.multi_bleu, 2),
            "signature": result.signature, "multi_signature": result.multi_signature,
            "buckets": bleu_by_length(result, buckets, references_by_source(data.pairs["test"]))}


def measure_generated(steps: int | None = None, num_pairs: int = 20000, seed: int = 0) -> dict:
    """Train the plain and the Luong decoder on the 3-clause corpus with the ``cpu`` preset."""
    data = TranslationData(generated_splits(num_pairs, seed=seed, max_clauses=3))
    model_config, train_config, _ = presets("cpu")
    if steps is not None:
        train_config = dataclasses.replace(train_config, steps=steps)
    train_config = dataclasses.replace(train_config, eval_every=0, eval_sentences=0, checkpoint_every=0)
    rows = {}
    for decoder in DECODERS:
        config = dataclasses.replace(model_config, decoder=decoder)
        seed_everything(train_config.seed)
        model = build_model(config, len(data.src_vocab), len(data.tgt_vocab))
        with tempfile.TemporaryDirectory() as run_dir:
            metrics = train(model, data, train_config, run_dir, device="cpu", progress=False)
        model.eval()
        rows[decoder] = {"final_loss": metrics["final_loss"], "train_seconds": metrics["train_seconds"],
                         "num_parameters": metrics["num_parameters"], **by_length(model, data, GENERATED_BUCKETS)}
    return {"which": "generated", "data": repr(data), "num_pairs": num_pairs, "max_clauses": 3,
            "model_config": {k: v for k, v in dataclasses.asdict(model_config).items() if k != "decoder"},
            "train_config": dataclasses.asdict(train_config), "decoders": rows}


def measure_real(max_sentences: int | None = None) -> dict:
    """The shipped plain and Luong models on the shipped real test split."""
    pairs = pretrained_test_pairs()[:max_sentences]
    rows = {}
    for decoder in DECODERS:
        model, src_vocab, tgt_vocab, checkpoint = load_pretrained(decoder)
        data = TranslationData(Splits([], [], pairs), src_vocab=src_vocab, tgt_vocab=tgt_vocab)
        rows[decoder] = {"num_parameters": sum(p.numel() for p in model.parameters()),
                         "step": checkpoint["step"], **by_length(model, data, REAL_BUCKETS)}
    return {"which": "real", "data": f"shipped fra-eng test split, {len(pairs):,} pairs", "decoders": rows}


def plot(results: dict, path: str | Path) -> None:
    """Grouped bars: test BLEU per source-length bucket, one colour per decoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["decoders"]
    labels = [bucket["label"] for bucket in rows["plain"]["buckets"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for offset, (decoder, color) in enumerate(zip(DECODERS, ("tab:blue", "tab:green"), strict=True)):
        scores = [bucket["bleu"] or 0.0 for bucket in rows[decoder]["buckets"]]
        xs = [i + (offset - 0.5) * width for i in range(len(labels))]
        bars = ax.bar(xs, scores, width, color=color, label=f"{decoder} (overall {rows[decoder]['bleu']:.1f})")
        for bar, score in zip(bars, scores, strict=True):
            ax.annotate(f"{score:.0f}", (bar.get_x() + bar.get_width() / 2, score), ha="center",
                        va="bottom", fontsize=8)
    counts = [bucket["sentences"] for bucket in rows["plain"]["buckets"]]
    ax.set_xticks(range(len(labels)), labels=[f"{label}\n({n} pairs)" for label, n in zip(labels, counts,
                                                                                            strict=True)])
    title = (f"Generated 1-3 clause sentences, {results['train_config']['steps']:,} steps"
             if results["which"] == "generated" else "Real fra-eng test split (shipped models)")
    ax.set(title=f"{title}: test BLEU by source length", xlabel="English sentence length (tokens)",
           ylabel="test sacreBLEU (greedy)", ylim=(0, 125))
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.bottleneck", description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("generated", "real"))
    parser.add_argument("--out", default="results", help="folder for the JSON and PNG (default: results)")
    parser.add_argument("--steps", type=int, help="generated: training steps (default: the cpu preset's)")
    parser.add_argument("--max-sentences", type=int, help="real: the first N test pairs only")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results = measure_generated(args.steps) if args.which == "generated" else measure_real(args.max_sentences)
    results.update(wall_seconds=round(time.perf_counter() - started, 1), **environment_info(torch.device("cpu")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bottleneck_{args.which}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / f"bottleneck_{args.which}.png")
    for decoder, row in results["decoders"].items():
        cells = ", ".join(f"{b['label']}: {b['bleu']}" for b in row["buckets"])
        print(f"{decoder:>6}: test BLEU {row['bleu']:.1f} (multi-ref {row['multi_bleu']:.1f}); by length {cells}")
    print(f"signature: {results['decoders']['luong']['signature']}")
    print(f"wrote {out / f'bottleneck_{args.which}.json'} and .png ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
