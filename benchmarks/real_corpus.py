"""Measure the shipped real-corpus translators: the figures of results/real_fra_eng.md.

    python benchmarks/real_corpus.py --runs RUNS/luong RUNS/plain --threads 2 --out results

For each shipped model (``utils.pretrained``): sacreBLEU on the whole shipped test split,
greedy and beam 4, single- and multi-reference, with sacreBLEU's signatures and decoding
times; the same on the fixed subset that the tests re-check (``SUBSET_EVERY``); twenty sample
translations. Then alignment heatmaps of the Luong model and, with ``--runs`` (the training
folders, whose ``metrics.json`` hold the curves), the training curves. Writes
``real_fra_eng.json`` and the PNGs into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

import torch  # noqa: E402

SUBSET_EVERY = 10  # the fixed subset: every 10th distinct English sentence, with all its translations
NUM_SAMPLES = 20
ALIGNMENT_SENTENCES = ("I have a red car.", "I miss you.", "She found the black cat.")
RUN_KEYS = ("steps", "epochs", "tokens_per_s", "train_seconds", "wall_seconds", "final_loss", "valid_bleu", "bleu",
            "num_parameters", "train_config", "model_config", "data_sizes", "device", "versions")


def subset_pairs(pairs, every: int = SUBSET_EVERY):
    """Every ``every``-th distinct English sentence (sorted, normalised) with all its pairs, in split order."""
    from utils.data import normalize

    keep = set(sorted({normalize(en) for en, _ in pairs})[::every])
    return [(en, fr) for en, fr in pairs if normalize(en) in keep]


def score(name: str, pairs, beam_size: int = 1) -> dict:
    """sacreBLEU of the shipped model ``name`` on ``pairs`` (and the result, for samples)."""
    from utils.pretrained import load_pretrained

    return score_model(load_pretrained(name), pairs, beam_size)


def score_model(loaded, pairs, beam_size: int = 1) -> dict:
    """sacreBLEU of ``loaded`` (``(model, src_vocab, tgt_vocab, _)`` as ``load_checkpoint`` returns)
    on ``pairs``, with the signatures and the decoding time (and the result, for samples)."""
    from utils.data import Splits, TranslationData
    from utils.training import bleu_on_split

    model, src_vocab, tgt_vocab, _ = loaded
    data = TranslationData(Splits([], [], pairs), src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    started = time.perf_counter()
    result = bleu_on_split(model, data, "test", beam_size=beam_size, batch_size=256)
    return {"bleu": round(result.bleu, 2), "multi_bleu": round(result.multi_bleu, 2), "pairs": result.num_sentences,
            "sentences": result.num_distinct_sources, "signature": result.signature,
            "multi_signature": result.multi_signature, "seconds": round(time.perf_counter() - started, 1),
            "result": result}


def figures(score: dict) -> dict:
    """A ``score``'s figures without its result object: what the JSON reports keep."""
    return {key: value for key, value in score.items() if key != "result"}


def run_summary(metrics: dict) -> dict:
    """What the reports keep of a training run's ``metrics.json``."""
    return {key: metrics.get(key) for key in RUN_KEYS}


def write_report(report: dict, path: Path) -> None:
    """``report`` with the machine's versions, written as JSON to ``path``."""
    from utils.training.metrics_file import environment_info

    report.update(environment_info(torch.device("cpu")))
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def samples(greedy: dict, count: int = NUM_SAMPLES) -> list[dict]:
    """``count`` translations spread evenly over the split (one per distinct English sentence)."""
    result, seen, rows = greedy["result"], set(), []
    for source, hypothesis, reference in zip(result.sources, result.hypotheses, result.references, strict=True):
        if source not in seen:
            seen.add(source)
            rows.append({"source": source, "hypothesis": hypothesis, "reference": reference})
    step = max(1, len(rows) // count)
    return rows[::step][:count]


def alignments(path: Path) -> list[dict]:
    """Heatmaps of the Luong model's attention on ``ALIGNMENT_SENTENCES``, saved to ``path``."""
    from utils.pretrained import load_pretrained
    from utils.seq2seq import translate
    from utils.training.commands.translate import save_alignment_plot

    model, src_vocab, tgt_vocab, _ = load_pretrained("luong")
    results = translate(model, list(ALIGNMENT_SENTENCES), src_vocab, tgt_vocab)
    save_alignment_plot(str(path), results, "luong: ")
    return [{"source": s, "translation": r.text} for s, r in zip(ALIGNMENT_SENTENCES, results, strict=True)]


def main(argv=None) -> int:
    from utils.pretrained import PRETRAINED_NAMES, pretrained_test_pairs

    parser = argparse.ArgumentParser(prog="benchmarks/real_corpus.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=[], metavar="DIR", help="training folders (for curves)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--out", default="results", help="folder for the JSON and PNGs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = pretrained_test_pairs()
    subset = subset_pairs(pairs)
    report = {"test_pairs": len(pairs), "subset": {"every": SUBSET_EVERY, "pairs": len(subset)}, "models": {}}
    for name in PRETRAINED_NAMES:
        greedy, beam = score(name, pairs), score(name, pairs, beam_size=4)
        subset_greedy = score(name, subset)
        report["models"][name] = {
            "greedy": figures(greedy),
            "beam4": figures(beam),
            "subset_greedy": figures(subset_greedy),
            "samples": samples(greedy),
        }
        print(f"{name:>6}: greedy {greedy['bleu']:.1f} / multi-ref {greedy['multi_bleu']:.1f}; beam 4 "
              f"{beam['bleu']:.1f} / {beam['multi_bleu']:.1f}; subset greedy {subset_greedy['bleu']:.2f}")
    report["alignments"] = alignments(out / "real_fra_eng_alignments.png")
    if args.runs:
        from utils.plot import training_curves
        from utils.training import read_metrics

        runs = {Path(run).name: read_metrics(Path(run) / "metrics.json") for run in args.runs}
        training_curves(runs, out / "real_fra_eng_training.png")
        report["runs"] = {name: run_summary(metrics) for name, metrics in runs.items()}
    write_report(report, out / "real_fra_eng.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
