"""benchmarks/translator.py at smoke size on the CPU: both models train, the table and ratio print."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys


def test_benchmark_smoke_prints_the_table_with_a_ratio(tmp_path, tmp_path_factory, root):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):  # see tests/test_train_resume.py
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp() / "pycache")
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "translator.py"), "--smoke", "--device", "cpu",
         "--threads", "1", "--json", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().split("\n")
    assert lines[0].startswith("translator training throughput: generated corpus (2,000 pairs)")
    assert lines[1].split()[:5] == ["model", "parameters", "precision", "tokens/s", "ms/step"]
    assert lines[3].startswith("ours: Luong") and lines[4].startswith("d2l: Bahdanau (GRU")
    for row in lines[3:5]:
        assert re.search(r"fp32\s+[\d,]+\s+[\d.]+$", row), row
    match = re.fullmatch(r"ratio \(ours / d2l tokens/s\): (\d+\.\d\d)x", lines[5])
    assert match, lines[5]
    saved = json.loads((tmp_path / "bench.json").read_text())
    ours, d2l = saved["rows"]
    assert ours["tokens"] == d2l["tokens"] > 0  # the same batches for both
    assert float(match.group(1)) == round(ours["tokens_per_s"] / d2l["tokens_per_s"], 2)
