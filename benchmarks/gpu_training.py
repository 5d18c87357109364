"""The shipped Transformer's recipe trained on a GPU for a wall-clock budget, scored against the shipped model.

    python benchmarks/gpu_training.py --data .data/fra.txt --minutes 2.5 --out OUT/training
    python benchmarks/gpu_training.py --data .data/fra.txt --tiny --out /tmp/training   # seconds, a CPU

The ``gpu-real`` preset (the shipped Transformer's sizes, so the shipping budget of 15 MB
holds; batches of 256 pairs in bf16) on the shipped models' data: ``cpu-real``'s data spec,
so the same splits and vocabularies, checked against the shipped test split before anything
trains. The step count is planned to fill ``--minutes`` of training from timed steps of
throwaway copies (as ``benchmarks/translator.py --time-to-quality`` plans its own); the
validations and checkpoints are off that clock. The trained model is exported as the shipped
ones are (fp16, ``utils.pretrained.export_pretrained``) and that file is scored on the shipped
test split (greedy and beam 4, single- and multi-reference; the fixed subset the tests
re-check) beside the shipped model's figures in ``results/transformer_fra_eng.json``.

Writes into ``--out``: ``run/`` (checkpoint and ``metrics.json``), ``transformer_gpu.pt``,
``training.json`` and ``training.png``. ``--tiny``: smoke sizes on the first pairs of
``--data``, scored on their own test split (nothing to compare with): the rehearsal of the
GPU run on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

import torch  # noqa: E402

from benchmarks.real_corpus import figures, run_summary, samples, score_model, subset_pairs  # noqa: E402
from benchmarks.translator import plan_our_steps  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RESULTS = ROOT / "results" / "transformer_fra_eng.json"
SHIPPED_BUDGET_BYTES = 15_000_000  # the shipped Transformer's (tests/test_pretrained.py)
VALIDATIONS = 8  # validation BLEU points on the curve
TINY_PAIRS = 3000
BEAM = 4


def recipe(data_path: str, tiny: bool):
    """``(ModelConfig, TrainConfig, DataSpec)``: gpu-real on the shipped data, or smoke sizes (tiny)."""
    from utils.training import DataSpec, presets

    model_config, train_config, _ = presets("smoke" if tiny else "gpu-real", "transformer")
    shipped = presets("cpu-real", "transformer")[2]
    spec = DataSpec(source="file", path=data_path, max_pairs=TINY_PAIRS if tiny else shipped.max_pairs,
                    min_freq=shipped.min_freq)
    if tiny:
        train_config = dataclasses.replace(train_config, eval_sentences=100)
    return model_config, train_config, spec


def check_shipped_split(data) -> None:
    """The held-out pairs must be the shipped test split, or the scores would not compare."""
    from utils.pretrained import pretrained_test_pairs

    if data.pairs["test"] != pretrained_test_pairs():
        raise SystemExit("gpu_training.py: --data does not give the shipped test split (another file, or "
                         "another number of pairs than the shipped models were trained on)")


def planned_config(config, steps: int):
    """``config`` for ``steps`` steps: warm-up at most a tenth, ``VALIDATIONS`` points, 4 checkpoints."""
    return dataclasses.replace(config, steps=steps, warmup_steps=min(config.warmup_steps, steps // 10),
                               log_every=max(1, min(config.log_every, steps // 20)),
                               eval_every=max(1, steps // VALIDATIONS), checkpoint_every=max(1, steps // 4))


def score_exported(path: Path, pairs, device: torch.device) -> tuple[dict, dict]:
    """The exported model's scores on ``pairs``: (figures for the JSON, the greedy score for samples)."""
    from utils.training.checkpoint import load_checkpoint

    loaded = load_checkpoint(path, device=device)
    greedy = score_model(loaded, pairs)
    scores = {"greedy": figures(greedy), f"beam{BEAM}": figures(score_model(loaded, pairs, beam_size=BEAM)),
              "subset_greedy": figures(score_model(loaded, subset_pairs(pairs)))}
    return scores, greedy


def verdict(scores: dict, shipped: dict) -> dict:
    """Whether the GPU model beats the shipped one, greedy and beam, single reference."""
    keys = ("greedy", f"beam{BEAM}")
    better = {key: scores[key]["bleu"] > shipped[key]["bleu"] for key in keys}
    return {**better, "replaces_shipped": all(better.values())}


def main(argv=None) -> int:
    from utils.plot import training_curves
    from utils.pretrained import export_pretrained
    from utils.runtime import choose_device, seed_everything
    from utils.seq2seq import build_model
    from utils.training import build_data, train

    parser = argparse.ArgumentParser(prog="benchmarks/gpu_training.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, metavar="PATH", help="a local fra.txt (the shipped models' corpus)")
    parser.add_argument("--minutes", type=float, default=2.5, help="training budget (default 2.5; tiny 0.05)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the run, the model and the JSON")
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--tiny", action="store_true", help="smoke sizes on a few pairs (the CPU rehearsal)")
    args = parser.parse_args(argv)
    minutes = 0.05 if args.tiny and args.minutes == parser.get_default("minutes") else args.minutes
    if not 0 < minutes < 60:
        parser.error(f"--minutes must be > 0 and < 60; got {minutes}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device(args.device)

    model_config, config, spec = recipe(args.data, args.tiny)
    started = time.perf_counter()
    data = build_data(spec)
    if not args.tiny:
        check_shipped_split(data)
    data_seconds = time.perf_counter() - started
    seed_everything(config.seed)
    model = build_model(model_config, len(data.src_vocab), len(data.tgt_vocab))
    with tempfile.TemporaryDirectory(prefix="gpu-training-") as folder:
        # timed without validations or checkpoints (which the budget does not count)
        untimed = dataclasses.replace(config, eval_sentences=0, checkpoint_every=0)
        plan = plan_our_steps(model, data, untimed, 60 * minutes, Path(folder), device)
    config = planned_config(config, plan["steps"])
    print(f"{plan['steps']:,} steps planned for {minutes:g} min ({1000 * plan['planned_seconds_per_step']:.1f} "
          f"ms/step); data built in {data_seconds:.1f} s", flush=True)
    metrics = train(model, data, config, out / "run", device=device, progress=False, data_spec=spec, log=print)

    exported = out / "transformer_gpu.pt"
    export_pretrained(out / "run" / "checkpoint.pt", exported)
    pairs = data.pairs["test"]  # the shipped split (checked above), or the tiny run's own
    scores, greedy = score_exported(exported, pairs, device)
    report = {"tiny": args.tiny, "minutes": minutes, "plan": plan, "data_seconds": round(data_seconds, 1),
              "run": run_summary(metrics), "test": scores, "samples": samples(greedy),
              "exported_bytes": exported.stat().st_size, "budget_bytes": SHIPPED_BUDGET_BYTES}
    if not args.tiny:
        shipped = json.loads(SHIPPED_RESULTS.read_text())["test"]["transformer"]
        report["shipped"] = {key: shipped[key] for key in ("greedy", f"beam{BEAM}", "subset_greedy")}
        report["verdict"] = {**verdict(scores, shipped),
                             "fits_budget": exported.stat().st_size <= SHIPPED_BUDGET_BYTES}
    name = f"Transformer, {metrics['device']['name']}"
    training_curves({name: metrics}, out / "training.png", title=f"{minutes:g} min of training")
    (out / "training.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"test BLEU greedy {scores['greedy']['bleu']:.2f} / beam {BEAM} {scores[f'beam{BEAM}']['bleu']:.2f}"
          + (f" (shipped: {report['shipped']['greedy']['bleu']:.2f} / {report['shipped'][f'beam{BEAM}']['bleu']:.2f})"
             if "shipped" in report else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
