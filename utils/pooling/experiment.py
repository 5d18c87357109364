"""Chapter 04's comparison: LSTM and Bi-LSTM classifiers with three poolings, one table.

Run the comparison of the three poolings (last state, mean, attention), for an
LSTM and a Bi-LSTM, print the table, and (with ``--out``) write its JSON record
and figure (also ``attn pooling``)::

    python -m utils.pooling.experiment --profile cpu --threads 1 --out results

Standard library and torch only (matplotlib for the figure).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from utils.command_line import fail, int_at_least, path_text, writable_folder
from utils.pooling.task import LENGTH_QUANTILES, POOLINGS, PoolingTask
from utils.pooling.training import build_and_train, evaluate_classifier, make_train_test, settings
from utils.runtime import get_profile
from utils.training.metrics_file import environment_info


def long_threshold(task: PoolingTask) -> int:
    """Passages at least this long are "long": the longest quarter of ``task``.

    Used in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    return int(torch.quantile(task.valid_lens.float(), 0.75).item())


def length_edges(task: PoolingTask) -> list[int]:
    """Token counts that cut ``task``'s passages into four quarters by length (five edges).

    Used in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    return [int(x) for x in torch.quantile(task.valid_lens.float(), torch.tensor(LENGTH_QUANTILES)).round()]


def accuracy_by_length(correct: torch.Tensor, task: PoolingTask, edges: list[int]) -> list[float]:
    """Accuracy in each quarter of passage length (``edges`` from :func:`length_edges`).

    Used in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    bins = torch.bucketize(task.valid_lens.float(), torch.tensor(edges[1:-1], dtype=torch.float), right=True)
    return [correct[bins == b].float().mean().item() for b in range(len(edges) - 1)]


def _recorder(test: PoolingTask, curve: list, by_length: list, half: int) -> Callable[[int, nn.Module], None]:
    """A callback for :func:`build_and_train` that appends the test accuracy (all passages and the
    longest quarter) to ``curve``, and after ``half`` updates the accuracy by length to ``by_length``."""
    long = test.valid_lens >= long_threshold(test)
    edges = length_edges(test)

    def record(updates: int, model: nn.Module) -> None:
        result = evaluate_classifier(model, test)
        curve.append({"updates": updates, "accuracy": round(result["accuracy"], 4),
                      "long_accuracy": round(result["correct"][long].float().mean().item(), 4)})
        if updates == half:
            by_length.extend(round(x, 4) for x in accuracy_by_length(result["correct"], test, edges))

    return record


def compare_poolings(profile: str | None = None, seed: int = 0, *, verbose: bool = False) -> list[dict]:
    """Train LSTM and Bi-LSTM classifiers with the three poolings; one result row each.

    Every row has the test accuracy (all passages and the longest quarter) after half the
    updates (``*_half``) and after all of them, the updates after which the accuracy on long
    passages first reached 0.99 (None if it did not), the learning curve, the accuracy by
    quarter of passage length after half the updates, the attention weight on the evidence and
    on the distractors (attention only), and the training seconds (indicative: wall time).

    No chapter builds it; its table is in chapter 04 §5 as ``python -m utils.pooling.experiment``;
    tested in tests/test_attention_pooling.py.
    """
    config = settings(profile)
    train, test = make_train_test(config, seed)
    long = test.valid_lens >= long_threshold(test)
    half = config["num_updates"] // 2
    rows = []
    for bidirectional in (False, True):
        for pooling in POOLINGS:
            curve, by_length = [], []
            record = _recorder(test, curve, by_length, half)
            model, seconds = build_and_train(pooling, bidirectional, train, config, seed=seed, callback=record)
            result = evaluate_classifier(model, test)
            at_half = next((point for point in curve if point["updates"] == half), None)
            reached = next((point["updates"] for point in curve if point["long_accuracy"] >= 0.99), None)
            rows.append({"encoder": "Bi-LSTM" if bidirectional else "LSTM", "pooling": pooling,
                         "accuracy_half": at_half["accuracy"] if at_half else None,
                         "long_accuracy_half": at_half["long_accuracy"] if at_half else None,
                         "accuracy": result["accuracy"],
                         "long_accuracy": result["correct"][long].float().mean().item(),
                         "updates_to_99_long": reached, "curve": curve, "accuracy_by_length_half": by_length,
                         "evidence_weight": result["evidence_weight"],
                         "distractor_weight": result["distractor_weight"], "seconds": seconds,
                         "model": model, "result": result})
            if verbose:
                print(format_row(rows[-1]), flush=True)
    return rows


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_row(row: dict) -> str:
    reached = "-" if row["updates_to_99_long"] is None else str(row["updates_to_99_long"])
    return (f"| {row['encoder']} | {row['pooling']} | {_accuracy(row['accuracy_half'])} "
            f"| {_accuracy(row['long_accuracy_half'])} | {_accuracy(row['accuracy'])} "
            f"| {_accuracy(row['long_accuracy'])} | {reached} | {_share(row['evidence_weight'])} "
            f"| {_share(row['distractor_weight'])} |")


def table_header(num_updates: int) -> str:
    half = num_updates // 2
    return (f"| encoder | pooling | accuracy, {half} updates | long passages, {half} updates "
            f"| accuracy, {num_updates} updates | long passages, {num_updates} updates "
            f"| updates to 0.99 on long passages | weight on the evidence | weight on the distractors |\n"
            "|---|---|---|---|---|---|---|---|---|")


def plot(record: dict, path: str | Path) -> None:
    """Two panels: accuracy on long passages by update, and accuracy by passage length after half
    the updates; one colour per pooling, solid for the LSTM, dashed for the Bi-LSTM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"last": "tab:red", "mean": "tab:orange", "attention": "tab:blue"}
    fig, (curves, lengths) = plt.subplots(1, 2, figsize=(11, 4))
    edges = record["test"]["length_edges"]
    for row in record["rows"]:
        style = {"color": colors[row["pooling"]], "linestyle": "-" if row["encoder"] == "LSTM" else "--",
                 "marker": "o", "markersize": 3, "label": f"{row['encoder']} + {row['pooling']}"}
        curves.plot([p["updates"] for p in row["curve"]], [p["long_accuracy"] for p in row["curve"]], **style)
        lengths.plot(range(len(edges) - 1), row["accuracy_by_length_half"], **style)
    half = record["settings"]["num_updates"] // 2
    curves.set(title="Learning: accuracy on the longest quarter of passages", xlabel="Adam updates",
               ylabel="test accuracy", ylim=(0.45, 1.02))
    curves.axvline(half, color="gray", linewidth=0.8)
    lengths.set(title=f"After {half} updates: accuracy by passage length", xlabel="passage length (tokens)",
                ylim=(0.45, 1.02))
    lengths.set_xticks(range(len(edges) - 1), [f"{edges[b]}-{edges[b + 1]}" for b in range(len(edges) - 1)])
    lengths.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Chapter 04, `{record['profile']}` profile: {record['settings']['num_train']} training "
                 f"passages, {record['test']['num']} test passages, seed {record['seed']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default=None,
                        help="sizes of the run (default: $COURSE_PROFILE, else by hardware)")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=lambda text: Path(path_text(text)), default=None,
                        help="also write ch04_<profile>_profile.json and .png into this folder")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # before the minutes of training, not after
        try:
            writable_folder(args.out, "--out")
        except ValueError as error:
            return fail("pooling", str(error), 2)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    config = settings(profile)
    _, test = make_train_test(config, args.seed)
    print(f"profile {profile}, seed {args.seed}, {torch.get_num_threads()} thread(s): "
          f"{config['num_train']} training passages, {config['num_updates']} updates of "
          f"{config['batch_size']}, {config['num_test']} test passages of 1-{config['max_sentences']} "
          f"sentences, distractor rate {config['distractor_rate']} "
          f"({int(test.valid_lens.min())}-{int(test.valid_lens.max())} tokens; long = "
          f">= {long_threshold(test)} tokens)")
    start, cpu_start = time.perf_counter(), time.process_time()
    print(table_header(config["num_updates"]))
    rows = compare_poolings(profile, args.seed, verbose=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"total {wall:.0f} s wall, {cpu:.0f} s CPU (training seconds per model: "
          + ", ".join(f"{row['encoder']} {row['pooling']} {row['seconds']:.0f}" for row in rows) + ")")
    if args.out is not None:

        record = {
            "command": f"python -m utils.pooling.experiment --profile {profile} --seed {args.seed}"
                       + (f" --threads {args.threads}" if args.threads is not None else "") + f" --out {args.out}",
            "profile": profile, "seed": args.seed, "settings": config,
            "test": {"num": len(test), "min_tokens": int(test.valid_lens.min()),
                     "max_tokens": int(test.valid_lens.max()), "long_from_tokens": long_threshold(test),
                     "length_edges": length_edges(test)},
            "table": "\n".join([table_header(config["num_updates"])] + [format_row(row) for row in rows]),
            "rows": [{key: value for key, value in row.items() if key not in ("model", "result")} for row in rows],
            "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            **environment_info(torch.device("cpu")),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"ch04_{profile}_profile.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        plot(record, args.out / f"ch04_{profile}_profile.png")
        print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.pooling.experiment", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
