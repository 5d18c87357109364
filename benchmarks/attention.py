"""Naive masked-softmax attention vs fused SDPA, as lengths grow: ``python benchmarks/attention.py [--smoke]``.

The logic lives in ``utils/bench_attention.py`` (also ``attn bench-attention``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from utils.bench_attention import configure, run  # noqa: E402

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="benchmarks/attention.py", description=__doc__.splitlines()[0])
    configure(parser)
    sys.exit(run(parser.parse_args()))
