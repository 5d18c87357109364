"""scripts/gpu_run.py, the one GPU run: its parts' time limits, the notebook runner, the wheels it carries.

The run itself needs the GPU machine; what it does there is tested here on the CPU: the
runner's outcomes (passed, failed, out of time with its children, skipped), a chapter run cell
by cell, and the parts it plans. `bash scripts/gpu_run.sh OUT --tiny` is the whole rehearsal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib

import nbformat
import pytest
from repository_scripts import load_script


@pytest.fixture(scope="module")
def gpu_run():
    return load_script("scripts/gpu_run.py")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_parts_pass_fail_and_are_stopped_with_their_children_at_their_limit(gpu_run, tmp_path):
    runner = gpu_run.Runner(tmp_path, time.monotonic() + 60)
    child = tmp_path / "child.pid"
    sleeper = ("import subprocess, sys, time\n"
               "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
               f"open({str(child)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    passed = runner.run(gpu_run.Part("ok", python("print('hello')"), 30))
    failed = runner.run(gpu_run.Part("bad", python("import sys; sys.exit(3)"), 30))
    started = time.monotonic()
    stopped = runner.run(gpu_run.Part("slow", python(sleeper), 3))
    assert (passed.status, passed.returncode) == ("passed", 0)
    assert (failed.status, failed.returncode) == ("failed", 3)
    assert stopped.status == "timed out after 3 s" and time.monotonic() - started < 10
    pid = int(child.read_text())
    for _ in range(50):  # the whole process group was killed: the grandchild too
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the part's child process {pid} outlived it")
    assert (tmp_path / "logs" / "ok.log").read_text() == "hello\n"
    assert "started" in (tmp_path / "logs" / "slow.log").read_text()
    assert [row["status"] for row in runner.summary()] == ["passed", "failed", "timed out after 3 s"]


def test_no_part_starts_without_time_left_and_together_keeps_to_its_width(gpu_run, tmp_path):
    late = gpu_run.Runner(tmp_path, time.monotonic() + 5)
    assert late.run(gpu_run.Part("late", python("pass"), 30)).status == "skipped: no time left"

    runner = gpu_run.Runner(tmp_path, time.monotonic() + 60)
    stamp = "import time; print(time.time()); time.sleep(1.5); print(time.time())"
    parts = [gpu_run.Part(f"p{i}", python(stamp), 30) for i in range(3)]
    runner.run_together(parts, at_once=2)
    assert [part.status for part in parts] == ["passed"] * 3
    spans = [[float(x) for x in (tmp_path / "logs" / f"p{i}.log").read_text().split()] for i in range(3)]
    assert spans[2][0] >= min(spans[0][1], spans[1][1]) - 0.05  # the third waited for a free slot
    assert spans[1][0] < spans[0][1]  # the first two ran together


def test_a_chapter_runs_cell_by_cell_past_an_error_and_reports_each_cell(gpu_run, tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# a chapter"),
        nbformat.v4.new_code_cell("import os\nprint(os.environ['COURSE_PROFILE'])"),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('after the error')"),
    ])
    path = tmp_path / "09_test.ipynb"
    nbformat.write(notebook, path)
    assert gpu_run.execute_notebook(path, tmp_path / "out", "gpu") == 1
    record = json.loads((tmp_path / "out" / "notebooks" / "09_test.json").read_text())
    assert record["profile"] == "gpu" and [cell["cell"] for cell in record["cells"]] == [1, 2, 3]
    assert [cell["error"] for cell in record["cells"]] == [None, "ZeroDivisionError: division by zero", None]
    ran = nbformat.read(tmp_path / "out" / "notebooks" / "09_test.ipynb", as_version=4)
    assert ran.cells[1].outputs[0].text == "gpu\n" and ran.cells[3].outputs[0].text == "after the error\n"
    report = gpu_run.report(tmp_path / "out", [])
    assert "notebook 09_test (gpu): 3 code cells run" in report
    assert "- cell 2: ZeroDivisionError: division by zero" in report


def test_the_gpu_run_times_cuda_in_both_precisions_and_the_rehearsal_the_cpu(gpu_run, tmp_path):
    for tiny, device in ((False, "cuda"), (True, "cpu")):
        args = argparse.Namespace(tiny=tiny, data="fra.txt", minutes=2.5,
                                                                  notebooks=None)
        timing = {part.name: part.argv for part in gpu_run.timing_parts(tmp_path, args)}
        assert list(timing) == ["attention", "translator_bf16", "translator_fp32", "translator_transformer"]
        assert timing["translator_transformer"][timing["translator_transformer"].index("--decoder") + 1] == "transformer"
        for argv in timing.values():
            assert argv[argv.index("--device") + 1] == device and ("--smoke" in argv) == tiny
        if not tiny:
            assert "8192" in timing["attention"] and timing["translator_fp32"][-4:] == ["--amp", "off", "--json",
                                                                                       str(tmp_path / "translator_fp32.json")]
            assert timing["translator_bf16"][timing["translator_bf16"].index("--steps") + 1] == "100"
        assert timing["attention"][timing["attention"].index("--dtypes") + 1:][:2] == ["float32", "bfloat16"]
        together = [part.name for part in gpu_run.together_parts(tmp_path, args)]
        expected = ["notebook_01", "tests_all"] if tiny else [
            "notebook_07", "notebook_08", "notebook_05", "notebook_02", "tests_all", "notebook_06", "notebook_03",
            "notebook_04", "notebook_01"]
        assert together == ["tests_cuda", "ddp", *expected]


def test_the_training_budget_shrinks_to_leave_the_parallel_parts_their_time(gpu_run, tmp_path):
    args = argparse.Namespace(tiny=False, data="fra.txt", minutes=2.5)
    roomy = gpu_run.training_part(tmp_path, args, left=1000)
    assert roomy.argv[roomy.argv.index("--minutes") + 1] == "2.50"
    tight = gpu_run.training_part(tmp_path, args, left=gpu_run.TOGETHER_SECONDS + gpu_run.TRAINING_OVERHEAD_SECONDS + 60)
    assert tight.argv[tight.argv.index("--minutes") + 1] == "1.00"
    assert tight.limit == 60 + gpu_run.TRAINING_OVERHEAD_SECONDS + 30
    alone = gpu_run.training_part(tmp_path, args, left=gpu_run.TRAINING_OVERHEAD_SECONDS + 60, reserve=0)
    assert alone.argv[alone.argv.index("--minutes") + 1] == "1.00"


def test_only_runs_the_parts_named(gpu_run, tmp_path, monkeypatch):
    """A retry: ``--only`` keeps the parts whose names start with what it is given."""
    ran = []
    monkeypatch.setattr(gpu_run.Runner, "run", lambda self, part: ran.append(part.name) or part)
    monkeypatch.setattr(gpu_run.Runner, "run_together", lambda self, parts, at_once=3: ran.extend(p.name for p in parts))
    monkeypatch.setattr(gpu_run, "environment",
                        lambda out: {"nvidia_smi": "", "versions": {"torch": ""}, "device": {"name": "cpu"}})
    gpu_run.main(["--out", str(tmp_path), "--data", "fra.txt", "--only", "training", "notebook_0"])
    assert ran == ["training", "notebook_07", "notebook_08", "notebook_05", "notebook_02", "notebook_06",
                   "notebook_03", "notebook_04", "notebook_01"]


def test_the_environment_is_what_metrics_files_record_and_the_report_quotes_it(gpu_run, tmp_path):
    import torch

    info = gpu_run.environment(tmp_path)
    assert json.loads((tmp_path / "environment.json").read_text()) == info
    assert info["versions"]["torch"] == torch.__version__ and info["cpus"] == os.cpu_count()
    assert info["device"]["type"] == ("cuda" if torch.cuda.is_available() else "cpu")
    versions = info["versions"]
    assert (f"python {versions['python']}, torch {versions['torch']}, CUDA {versions['cuda']}, "
            f"cuDNN {versions['cudnn']}") in gpu_run.report(tmp_path, [])


def test_the_carried_wheels_are_the_locks_versions(root):
    """scripts/gpu_wheels.txt: what the GPU machine lacks, at the versions the course is tested with."""
    def normal(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    lock = tomllib.loads((root / "uv.lock").read_text())
    locked = {}
    for package in lock["package"]:
        locked.setdefault(normal(package["name"]), set()).add(package.get("version"))
    lines = [line for line in (root / "scripts" / "gpu_wheels.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    wanted = dict(line.split("==") for line in lines)
    assert {"nbclient", "ipykernel", "d2l", "pooch", "sacrebleu"} <= set(wanted)
    for name, version in wanted.items():
        assert version in locked.get(normal(name), set()), f"{name}=={version} is not in uv.lock"
