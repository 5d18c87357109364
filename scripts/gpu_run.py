"""The GPU run: every CUDA check of the course in one command, each part with a time limit.

    python scripts/gpu_run.py --data .data/fra.txt --out /tmp/gpu           # on the GPU machine, 8 min
    python scripts/gpu_run.py --data .data/fra.txt --out /tmp/gpu --tiny    # the rehearsal: a CPU, tiny sizes

The parts, in order. Those up to the training time things, so each runs alone on the machine:

  environment       nvidia-smi and versions                       environment.json
  attention         benchmarks/attention.py, CUDA, fp32 and bf16  attention.json
  translator_bf16   benchmarks/translator.py, ours in bf16 vs d2l translator_bf16.json, translator_profile.txt
  translator_fp32   the same with ours in fp32 (like for like)    translator_fp32.json
  translator_transformer  our Transformer (bf16) vs d2l, profiled  translator_transformer*.json|txt
  training          benchmarks/gpu_training.py for --minutes      training/
  then, together (they only have to pass):
  tests_cuda        pytest on the test files with CUDA-only tests (NCCL: the next part)
  ddp               torchrun, one process, NCCL: attn train --profile smoke
  notebook_NAME     chapters in the gpu profile, cell by cell      notebooks/NAME.ipynb, NAME.json
                    (07, 08, 05, 02: those with CUDA-specific cells; then the unit tests; then 06, 03, 04, 01)
  tests_all         the unit tests (but the browser's, grading's and JupyterLab's), as far as time allows

Each part's output goes to OUT/logs/PART.log, and OUT/summary.json says for each whether it
passed, failed (its exit status), ran out of time or was skipped (no time left), with its
seconds. A failing part does not stop the others; the whole run ends by ``--deadline`` seconds
(the training's budget shrinks to leave the parallel parts their time). ``OUT/report.md``
gathers the tables. ``--tiny`` runs the same parts on the CPU at smoke sizes; ``--only training
notebook_07`` runs just the parts so named (a retry, in the time that is left).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUDA_TEST_FILES = ("tests/test_masked_softmax.py", "tests/test_multihead_attention.py",
                   "tests/test_seq2seq_model.py", "tests/test_bench_attention.py")
# the chapters in the order they are run: the translators first (the GPU sections that matter most)
NOTEBOOKS = ("07_attention_translator", "08_transformer", "05_multihead_gated_self_attention",
             "02_dot_product_attention", "06_seq2seq", "03_additive_attention", "04_lstm_attention_pooling",
             "01_masked_softmax")
TINY_NOTEBOOKS = ("01_masked_softmax",)
UNIT_TESTS_AFTER = 4  # chapters: the unit tests start after the first four (07, 08, 05, 02)
ATTENTION_LENGTHS = (128, 256, 512, 1024, 2048, 4096, 8192)
PARALLEL = 3  # parts at a time in the second phase (the machine has 16 cores, one GPU)
TOGETHER_SECONDS = 150  # kept for the second phase when the training's budget is set
MIN_START_SECONDS = 20  # no part starts with less than this left
TRAINING_OVERHEAD_SECONDS = 75  # data, planning, validations, export and scoring around the budget


@dataclass
class Part:
    name: str
    argv: list[str]
    limit: float  # seconds
    env: dict = field(default_factory=dict)
    status: str = "pending"
    seconds: float = 0.0
    returncode: int | None = None


class Runner:
    """Runs parts as subprocesses (each in its own process group), logging into OUT/logs."""

    def __init__(self, out: Path, deadline: float):
        self.out, self.deadline = out, deadline
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.parts: list[Part] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def start(self, part: Part):
        self.parts.append(part)
        if self.left() < MIN_START_SECONDS:
            part.status = "skipped: no time left"
            return None
        log = open(self.out / "logs" / f"{part.name}.log", "w")  # noqa: SIM115 (closed in finish)
        print(f"[{time.strftime('%H:%M:%S')}] {part.name}: {' '.join(part.argv)}", flush=True)
        process = subprocess.Popen(part.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **part.env},
                                   start_new_session=True)
        part.status, part.limit = "running", min(part.limit, self.left())
        return process, log, time.monotonic()

    def finish(self, part: Part, started) -> bool:
        """Poll ``part``; stop it at its limit. True once it has ended."""
        process, log, began = started
        elapsed = time.monotonic() - began
        if process.poll() is None and elapsed < part.limit:
            return False
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the group: a notebook's kernel too
            process.wait()
            part.status = f"timed out after {part.limit:.0f} s"
        else:
            part.status = "passed" if process.returncode == 0 else "failed"
        part.returncode, part.seconds = process.returncode, round(elapsed, 1)
        log.close()
        print(f"[{time.strftime('%H:%M:%S')}] {part.name}: {part.status} ({part.seconds} s)", flush=True)
        return True

    def run(self, part: Part) -> Part:
        started = self.start(part)
        while started is not None and not self.finish(part, started):
            time.sleep(0.5)
        return part

    def run_together(self, parts: list[Part], at_once: int = PARALLEL) -> None:
        pending, running = list(parts), []
        while pending or running:
            while pending and len(running) < at_once:
                part = pending.pop(0)
                started = self.start(part)
                if started is not None:
                    running.append((part, started))
            running = [(part, started) for part, started in running if not self.finish(part, started)]
            time.sleep(0.5)

    def summary(self) -> list[dict]:
        return [{"part": p.name, "status": p.status, "seconds": p.seconds, "returncode": p.returncode,
                 "command": " ".join(p.argv)} for p in self.parts]


def environment(out: Path) -> dict:
    """The machine: what ``metrics.json`` records (versions, the device), and nvidia-smi's lines."""
    import torch

    from utils.training.metrics_file import environment_info

    def command(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"({argv[0]}: {error})"

    info = environment_info("cuda" if torch.cuda.is_available() else "cpu")
    info |= {"cpus": os.cpu_count(),
             "nvidia_smi": command("nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                   "--format=csv,noheader"),
             "nvidia_smi_full": command("nvidia-smi")}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info["device"] |= {"memory_gib": round(properties.total_memory / 2**30, 1),
                           "multiprocessors": properties.multi_processor_count,
                           "capability": f"{properties.major}.{properties.minor}"}
    (out / "environment.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def timing_parts(out: Path, args) -> list[Part]:
    python, device = sys.executable, "cpu" if args.tiny else "cuda"
    # on the GPU: lengths up to where the naive path's weights take gigabytes, and more timed
    # steps than the CPU default (a step of ours takes milliseconds there)
    attention_sizes = ["--smoke"] if args.tiny else ["--lengths", *map(str, ATTENTION_LENGTHS)]
    translator_sizes = ["--smoke"] if args.tiny else ["--steps", "100", "--warmup", "10"]
    attention = [python, "benchmarks/attention.py", "--device", device, "--dtypes", "float32", "bfloat16",
                 "--json", str(out / "attention.json"), *attention_sizes]
    translator = [python, "benchmarks/translator.py", "--device", device, *translator_sizes]
    return [
        Part("attention", attention, 60),
        Part("translator_bf16", [*translator, "--amp", "bf16", "--json", str(out / "translator_bf16.json"),
                                 "--profile-steps", str(out / "translator_profile.txt")], 90),
        Part("translator_fp32", [*translator, "--amp", "off", "--json", str(out / "translator_fp32.json")], 75),
        Part("translator_transformer", [*translator, "--decoder", "transformer", "--amp", "bf16", "--json",
                                        str(out / "translator_transformer.json"), "--profile-steps",
                                        str(out / "translator_transformer_profile.txt")], 75),
    ]


def training_part(out: Path, args, left: float, reserve: float = TOGETHER_SECONDS) -> Part:
    """The training, its budget cut to what the deadline leaves after ``reserve`` seconds (the parallel parts)."""
    budget = min(args.minutes, (left - reserve - TRAINING_OVERHEAD_SECONDS) / 60)
    argv = [sys.executable, "benchmarks/gpu_training.py", "--data", args.data, "--out", str(out / "training")]
    argv += ["--tiny", "--device", "cpu"] if args.tiny else ["--minutes", f"{max(budget, 0.1):.2f}"]
    return Part("training", argv, 60 * max(budget, 0.1) + TRAINING_OVERHEAD_SECONDS + 30)


def together_parts(out: Path, args) -> list[Part]:
    python, pytest = sys.executable, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    device = "cpu" if args.tiny else "cuda"
    torchrun = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                "-m", "utils.course.cli", "train", "--profile", "smoke", "--device", device,
                "--overwrite", "--no-progress", "--out", str(out / "ddp")]
    parts = [Part("tests_cuda", [*pytest, "-q", "-rs", "-n", "4", *CUDA_TEST_FILES], 150),
             Part("ddp", torchrun, 90)]
    for name in args.notebooks or (TINY_NOTEBOOKS if args.tiny else NOTEBOOKS):
        path = ROOT / "solutions" / f"{name}.ipynb"
        parts.append(Part(f"notebook_{name[:2]}", [python, __file__, "--notebook", str(path), "--out", str(out),
                                                    "--profile", "smoke" if args.tiny else "gpu"], 400))
    # not the GPU's business, and each needs what the machine lacks (Chromium, bubblewrap, JupyterLab)
    ignored = ("tests/test_browser.py", "tests/test_grading.py", "tests/test_grading_sandbox.py", "tests/test_lab.py")
    unit_tests = Part("tests_all", [*pytest, "-v", "-n", "4", *(f"--ignore={path}" for path in ignored), "tests"], 600)
    # after the chapters with CUDA-specific cells, before those that only train longer on a GPU
    parts.insert(min(len(parts), 2 + UNIT_TESTS_AFTER), unit_tests)
    return parts


# ---------------------------------------------------------------- one notebook, cell by cell


def execute_notebook(path: Path, out: Path, profile: str) -> int:
    """Run the notebook at ``path`` cell by cell in ``profile``, saving it after every cell.

    Errors do not stop it (a later, independent cell still tells something); OUT/notebooks/NAME.json
    lists each code cell's seconds and error, so a run stopped at its limit still reports the
    cells it finished. Exit status 1 when a cell raised.
    """
    import nbformat
    from nbclient import NotebookClient

    from utils.course.notebooks.execute import write

    path, folder, name = Path(path), out / "notebooks", Path(path).stem
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    os.environ.update(COURSE_PROFILE=profile, PYDEVD_DISABLE_FILE_VALIDATION="1")
    client = NotebookClient(notebook, kernel_name="python3", timeout=600, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    cells, record = [], {"notebook": name, "profile": profile, "cells": []}
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            started = time.perf_counter()
            client.execute_cell(cell, index, execution_count=len(cells) + 1)
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            cells.append({"cell": index, "seconds": round(time.perf_counter() - started, 2),
                          "error": f"{errors[0]['ename']}: {errors[0]['evalue']}"[:500] if errors else None})
            record["cells"] = cells
            write(notebook, folder / f"{name}.ipynb")
            (folder / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return 1 if any(cell["error"] for cell in cells) else 0


# ---------------------------------------------------------------- the report


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def report(out: Path, summary: list[dict]) -> str:
    """``report.md``: the parts' outcomes and the tables their JSON files hold."""
    lines = ["# GPU run", "", "| part | status | seconds |", "|---|---|---|"]
    lines += [f"| {row['part']} | {row['status']} | {row['seconds']} |" for row in summary]
    env = read_json(out / "environment.json") or {}
    versions = env.get("versions", {})
    lines += ["", f"nvidia-smi: {env.get('nvidia_smi')}",
              f"python {versions.get('python')}, torch {versions.get('torch')}, CUDA {versions.get('cuda')}, "
              f"cuDNN {versions.get('cudnn')}"]
    for name in ("translator_bf16", "translator_fp32", "translator_transformer"):
        result = read_json(out / f"{name}.json")
        if result:
            lines += ["", f"## {name}", "", "| model | precision | tokens/s | ms/step |", "|---|---|---|---|"]
            lines += [f"| {r['model']} | {r['precision']} | {r['tokens_per_s']:,.0f} | {1000 * r['seconds_per_step']:.1f} |"
                      for r in result["rows"]]
            lines.append(f"\nratio (ours / d2l tokens/s): {result['ratio']:.2f}x")
    attention = read_json(out / "attention.json")
    if attention:
        lines += ["", "## attention", "", "| device | dtype | length | naive ms | SDPA ms | naive/SDPA |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['device']} | {r['dtype']} | {r['length']} | {r['naive_ms']:.3f} | {r['sdpa_ms']:.3f} | "
                  f"{r['ratio']:.2f} |" for r in attention["rows"]]
    training = read_json(out / "training" / "training.json")
    if training:
        run = training["run"]
        lines += ["", "## training", "", f"{run['steps']:,} steps ({run['epochs']} epochs), {run['train_seconds']} s "
                  f"of training, {run['tokens_per_s']:,} tokens/s, final valid BLEU {run['valid_bleu']}", "",
                  "| | greedy | multi-ref | beam 4 | multi-ref | subset greedy |", "|---|---|---|---|---|---|"]
        for label, scores in (("this run", training["test"]), ("shipped", training.get("shipped"))):
            if scores:
                lines.append(f"| {label} | {scores['greedy']['bleu']} | {scores['greedy']['multi_bleu']} | "
                             f"{scores['beam4']['bleu']} | {scores['beam4']['multi_bleu']} | "
                             f"{scores['subset_greedy']['bleu']} |")
        if "verdict" in training:
            lines.append(f"\nverdict: {training['verdict']}")
    for path in sorted((out / "notebooks").glob("*.json")) if (out / "notebooks").is_dir() else []:
        record = read_json(path)
        errors = [cell for cell in record["cells"] if cell["error"]]
        lines.append(f"\nnotebook {record['notebook']} ({record['profile']}): {len(record['cells'])} code cells run "
                     f"in {sum(c['seconds'] for c in record['cells']):.0f} s, {len(errors)} with an error"
                     + "".join(f"\n- cell {c['cell']}: {c['error']}" for c in errors))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu_run.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder every result goes into")
    parser.add_argument("--data", metavar="PATH", help="a local fra.txt (the shipped models' corpus)")
    parser.add_argument("--deadline", type=float, default=480, help="seconds for the whole run (default 480)")
    parser.add_argument("--minutes", type=float, default=2.5, help="the training's budget (default 2.5)")
    parser.add_argument("--notebooks", nargs="+", metavar="NAME", help="chapters to run (default: all, 07 first)")
    parser.add_argument("--tiny", action="store_true", help="the CPU rehearsal: smoke sizes, chapter 01 only")
    parser.add_argument("--only", nargs="+", metavar="PART",
                        help="run only the parts whose names start with one of these (a retry: --only training "
                             "notebook_07)")
    parser.add_argument("--notebook", help=argparse.SUPPRESS)  # internal: run one notebook (a part) by path
    parser.add_argument("--profile", default="gpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if args.notebook:
        return execute_notebook(args.notebook, out, args.profile)
    if not args.data:
        parser.error("--data is required (a local fra.txt)")
    args.data = str(Path(args.data).resolve())
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out, time.monotonic() + args.deadline)
    info = environment(out)
    print(f"{info['nvidia_smi'] or 'no GPU'}; torch {info['versions']['torch']}, device {info['device']['name']}",
          flush=True)
    def chosen(parts: list[Part]) -> list[Part]:
        return [part for part in parts if not args.only or any(part.name.startswith(p) for p in args.only)]

    together = chosen(together_parts(out, args))
    for part in chosen(timing_parts(out, args)):
        runner.run(part)
    training = training_part(out, args, runner.left(), reserve=TOGETHER_SECONDS if together else 0)
    for part in chosen([training]):
        runner.run(part)
    runner.run_together(together)
    summary = runner.summary()
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(report(out, summary))
    print(report(out, summary))
    return 0 if all(row["status"] == "passed" for row in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
