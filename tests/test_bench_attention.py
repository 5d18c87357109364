"""The attention benchmark: its smoke size runs and prints a table with a row per length."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from benchmarks.attention import COLUMNS, SMOKE_LENGTHS, Row, format_table, run_benchmark


def table_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return header, rows


def test_script_smoke_prints_a_row_per_length(root):
    result = subprocess.run([sys.executable, "benchmarks/attention.py", "--smoke", "--repeats", "1"],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    header, rows = table_rows(result.stdout)
    assert header == list(COLUMNS)
    cpu_rows = [row for row in rows if row[0] == "cpu"]
    assert [int(row[2]) for row in cpu_rows] == list(SMOKE_LENGTHS)
    expected_devices = 2 if torch.cuda.is_available() else 1
    assert len(rows) == expected_devices * len(SMOKE_LENGTHS)
    for row in rows:
        naive, sdpa, ratio = (float(cell) for cell in row[3:])
        assert naive > 0 and sdpa > 0
        assert abs(ratio - naive / sdpa) <= 0.01 * ratio + 0.01  # rounding of the printed times


def test_dtypes_time_every_device_in_each_and_json_keeps_the_rows(root, tmp_path):
    out = tmp_path / "attention.json"
    result = subprocess.run([sys.executable, "benchmarks/attention.py", "--smoke", "--repeats", "1", "--device", "cpu",
                             "--dtypes", "float32", "bfloat16", "--json", str(out)],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    _, rows = table_rows(result.stdout)
    assert [(row[1], int(row[2])) for row in rows] == [(dtype, length) for dtype in ("float32", "bfloat16")
                                                       for length in SMOKE_LENGTHS]
    saved = json.loads(out.read_text())
    assert [(r["dtype"], r["length"]) for r in saved["rows"]] == [(row[1], int(row[2])) for row in rows]
    assert all(r["ratio"] == r["naive_ms"] / r["sdpa_ms"] for r in saved["rows"])
    assert saved["settings"]["batch"] == 2 and saved["settings"]["repeats"] == 1


def test_script_rejects_a_bad_length(root):
    result = subprocess.run([sys.executable, "benchmarks/attention.py", "--lengths", "8", "0"],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "argument --lengths: must be a whole number >= 1; got 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_benchmark_and_table_in_process():
    rows = run_benchmark([8, 12], [torch.device("cpu")], batch=1, heads=1, head_size=4, repeats=1)
    assert [(row.device, row.dtype, row.length) for row in rows] == [("cpu", "float32", 8), ("cpu", "float32", 12)]
    both = run_benchmark([8], [torch.device("cpu")], batch=1, heads=1, head_size=4, repeats=1,
                         dtypes=[torch.float32, torch.bfloat16])
    assert [row.dtype for row in both] == ["float32", "bfloat16"]
    table = format_table([Row("cpu", "float32", 8, 2.0, 0.5)])
    assert table.splitlines()[-1] == "| cpu | float32 | 8 | 2.000 | 0.500 | 4.00 |"
