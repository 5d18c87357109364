"""The masked-softmax path vs the fused SDPA path, as lengths grow: ``python benchmarks/attention.py [--smoke]``.

Times ``DotProductAttention(need_weights=True)`` (scores, ``masked_softmax``, weights @ values:
the whole ``(batch, heads, length, length)`` matrix is materialised) against
``need_weights=False`` (``F.scaled_dot_product_attention``), self-attention with a 1-D
valid-length mask, forward only, on the CPU and on CUDA when present. Torch and stdlib only.
By default the CPU is timed in fp32 and CUDA in bf16 (what each trains in); ``--dtypes
float32 bfloat16`` times every device in each. ``--json PATH`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from utils.attention.dot_product import DotProductAttention  # noqa: E402
from utils.command_line import int_at_least  # noqa: E402

SMOKE_LENGTHS = (16, 32, 64)
DEFAULT_LENGTHS = (128, 256, 512, 1024, 2048)
COLUMNS = ("device", "dtype", "length", "naive_ms", "sdpa_ms", "naive/sdpa")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Row:
    device: str
    dtype: str
    length: int
    naive_ms: float
    sdpa_ms: float

    @property
    def ratio(self) -> float:
        return self.naive_ms / self.sdpa_ms


def time_ms(fn, device: torch.device, repeats: int) -> float:
    """Best wall time of ``fn()`` in milliseconds, after one warm-up call.

    The minimum, not the mean: on a shared machine the other processes only ever add time.
    """
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


@torch.no_grad()
def bench_one(length: int, device: torch.device, dtype: torch.dtype, *, batch: int, heads: int,
              head_size: int, repeats: int) -> Row:
    generator = torch.Generator().manual_seed(length)
    shape = (batch, heads, length, head_size)  # (batch, heads, steps, head_size)
    queries, keys, values = (torch.randn(*shape, generator=generator).to(device, dtype) for _ in range(3))
    # every sequence keeps at least half its keys: a realistic padding pattern
    valid_lens = torch.randint(length // 2, length + 1, (batch,), generator=generator).to(device)
    attention = DotProductAttention().eval()
    naive = time_ms(lambda: attention(queries, keys, values, valid_lens, need_weights=True), device, repeats)
    sdpa = time_ms(lambda: attention(queries, keys, values, valid_lens, need_weights=False), device, repeats)
    return Row(device.type, str(dtype).removeprefix("torch."), length, naive, sdpa)


def default_dtypes(device: torch.device) -> tuple[torch.dtype, ...]:
    """bf16 is what a GPU trains in; on the CPU fp32 is the fair comparison."""
    return (torch.bfloat16,) if device.type == "cuda" else (torch.float32,)


def run_benchmark(lengths, devices, *, batch: int = 4, heads: int = 4, head_size: int = 64,
                  repeats: int = 5, dtypes=None) -> list[Row]:
    """One ``Row`` per (device, dtype, length); ``dtypes=None`` takes each device's default."""
    rows = []
    for device in devices:
        for dtype in dtypes or default_dtypes(device):
            for length in lengths:
                rows.append(bench_one(length, device, dtype, batch=batch, heads=heads, head_size=head_size,
                                      repeats=repeats))
    return rows


def format_table(rows: list[Row]) -> str:
    """A markdown table with one row per (device, length)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append(f"| {row.device} | {row.dtype} | {row.length} | {row.naive_ms:.3f} | "
                     f"{row.sdpa_ms:.3f} | {row.ratio:.2f} |")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny sizes, seconds (lengths {', '.join(map(str, SMOKE_LENGTHS))}; the tests)")
    parser.add_argument("--lengths", type=int_at_least(1), nargs="+", default=None,
                        help=f"sequence lengths (default {' '.join(map(str, DEFAULT_LENGTHS))})")
    parser.add_argument("--batch", type=int_at_least(1), default=None, help="sequences per batch (default 4; smoke 2)")
    parser.add_argument("--heads", type=int_at_least(1), default=4, help="attention heads (extra leading axis)")
    parser.add_argument("--head-size", type=int_at_least(1), default=64, help="features per head, d")
    parser.add_argument("--repeats", type=int_at_least(1), default=None, help="timed calls per cell (the best counts; default 5)")
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="CPU threads for torch (default: torch's choice; 1 gives steadier numbers "
                        "on a busy machine)")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="all = the CPU, and CUDA when present")
    parser.add_argument("--dtypes", choices=tuple(DTYPES), nargs="+", default=None,
                        help="precisions to time on every device (default: fp32 on the CPU, bf16 on CUDA)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows (and the settings) as JSON")


def run(args: argparse.Namespace) -> int:
    lengths = args.lengths or (SMOKE_LENGTHS if args.smoke else DEFAULT_LENGTHS)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    batch = args.batch or (2 if args.smoke else 4)
    repeats = args.repeats or (3 if args.smoke else 5)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            raise SystemExit("benchmarks/attention.py: --device cuda was asked for, but CUDA is not available")
    print(f"self-attention, batch {batch}, {args.heads} heads of size {args.head_size}, "
          f"1-D valid lengths, forward only, best of {repeats} calls; torch {torch.__version__}, "
          f"CPU threads: {torch.get_num_threads()}" + ("" if torch.cuda.is_available() else "; no CUDA here"))
    dtypes = [DTYPES[name] for name in args.dtypes] if args.dtypes else None
    rows = run_benchmark(lengths, devices, batch=batch, heads=args.heads, head_size=args.head_size,
                         repeats=repeats, dtypes=dtypes)
    print(format_table(rows))
    if args.json:
        settings = {"batch": batch, "heads": args.heads, "head_size": args.head_size, "repeats": repeats,
                    "torch": torch.__version__,
                    "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
        records = [{**vars(row), "ratio": row.ratio} for row in rows]
        Path(args.json).write_text(json.dumps({"settings": settings, "rows": records}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="benchmarks/attention.py", description=__doc__.splitlines()[0])
    configure(parser)
    sys.exit(run(parser.parse_args()))
