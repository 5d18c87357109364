"""Chapter 08's comparison on the real corpus: the Transformer's run against the shipped Luong run.

    python benchmarks/transformer_vs_luong.py --run RUNS/transformer --threads 2 --out results

Reads the Transformer's training folder (``metrics.json``: losses, validation BLEU every
``--eval-every`` steps, training seconds) and the Luong run recorded in
``results/real_fra_eng.json`` (written by ``benchmarks/real_corpus.py``); scores the shipped
Transformer (``utils/pretrained/transformer.pt``, that run exported in fp16) on the shipped test split (greedy and beam 4, single- and
multi-reference, and greedy on the fixed subset the tests re-check, as
``benchmarks/real_corpus.py`` scores the shipped models); writes
``transformer_fra_eng.json`` and the curves ``transformer_fra_eng_training.png`` into ``--out``.

Training minutes at a step are the step's share of the run's measured training time (the
curves log validation BLEU per step, not per second); time to a BLEU of 30 is interpolated
linearly between the two validations around it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

import torch  # noqa: E402

TARGET_BLEU = 30.0


def minutes_at(run: dict, step: int) -> float:
    """Training minutes at ``step`` of ``run`` (a metrics dict), at the run's mean speed."""
    return step / run["steps"] * run["train_seconds"] / 60


def time_to_bleu(run: dict, target: float = TARGET_BLEU) -> dict | None:
    """The first step (and training minutes) where validation BLEU reaches ``target``, interpolated."""
    previous = {"step": 0, "bleu": 0.0}
    for point in run["bleu"]:
        if point["bleu"] >= target:
            share = (target - previous["bleu"]) / (point["bleu"] - previous["bleu"])
            step = previous["step"] + share * (point["step"] - previous["step"])
            return {"step": round(step), "minutes": round(minutes_at(run, step), 1)}
        previous = point
    return None


def plot_curves(runs: dict, path: Path) -> None:
    """Validation BLEU against training minutes, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, run in runs.items():
        points = run["bleu"]
        ax.plot([minutes_at(run, p["step"]) for p in points], [p["bleu"] for p in points], marker="o", label=name)
    ax.axhline(TARGET_BLEU, color="gray", linestyle=":", linewidth=1)
    ax.set_title("Real fra-eng, 2 CPU threads: validation BLEU while training")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("valid sacreBLEU (greedy)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from benchmarks.real_corpus import figures, run_summary, score_model, subset_pairs, write_report
    from utils.pretrained import load_pretrained, pretrained_test_pairs
    from utils.training import read_metrics

    parser = argparse.ArgumentParser(prog="benchmarks/transformer_vs_luong.py", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, metavar="DIR", help="the Transformer's training folder")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--out", default="results", help="folder for the JSON and the PNG")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    luong = json.loads((out / "real_fra_eng.json").read_text())
    runs = {"transformer": read_metrics(Path(args.run) / "metrics.json"), "luong": luong["runs"]["luong"]}
    pairs = pretrained_test_pairs()
    report = {"runs": {}, "test": {"luong": {"greedy": luong["models"]["luong"]["greedy"],
                                             "beam4": luong["models"]["luong"]["beam4"]}}}
    for name, run in runs.items():
        report["runs"][name] = {**run_summary(run), "time_to_bleu_30": time_to_bleu(run)}
    loaded = load_pretrained("transformer")  # the shipped fp16 export of that run: what learners get
    report["test"]["transformer"] = {label: figures(score_model(loaded, test, beam))
                                     for label, test, beam in (("greedy", pairs, 1), ("beam4", pairs, 4),
                                                               ("subset_greedy", subset_pairs(pairs), 1))}
    for name, scores in report["test"].items():
        print(f"{name:>11}: test greedy {scores['greedy']['bleu']:.1f} (multi-ref {scores['greedy']['multi_bleu']:.1f}), "
              f"beam 4 {scores['beam4']['bleu']:.1f} ({scores['beam4']['multi_bleu']:.1f}); "
              f"time to valid BLEU 30: {report['runs'][name]['time_to_bleu_30']}")
    plot_curves(runs, out / "transformer_fra_eng_training.png")
    write_report(report, out / "transformer_fra_eng.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
