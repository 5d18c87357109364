#!/usr/bin/env bash
# The GPU run as the device machine takes it (scripts/gpu_run.py says what it runs):
#   bash scripts/gpu_run.sh OUT [gpu_run.py options]
# OUT receives gpu_run.tar.gz (every result and log) and transformer_gpu.pt (the trained model).
# That machine's python3 has torch but not the course's notebook and reference packages: they
# travel as wheels in .whl/ and are installed into a temporary folder; the corpus travels as
# .data/fra.txt (a copy of the shared fra.txt). Both folders are git-ignored; .whl/ is made with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl -r scripts/gpu_wheels.txt
# PYTHON chooses the interpreter (the rehearsal: a Python 3.12 venv with torch and no notebook stack).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: bash scripts/gpu_run.sh OUT_FOLDER [gpu_run.py options]" >&2
  exit 2
fi
if [ ! -f .data/fra.txt ]; then
  echo "scripts/gpu_run.sh: .data/fra.txt is missing: copy the shared fra-eng corpus's fra.txt there first" >&2
  exit 2
fi
out=$(realpath "$1")
shift
python=${PYTHON:-python3}
site=$(mktemp -d)
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    .whl/*.whl || exit 1
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
PYTHONUNBUFFERED=1 "$python" scripts/gpu_run.py --out "$work/gpu" --data .data/fra.txt "$@" 2>&1 \
  | tee "$work/gpu_run.log"
status=${PIPESTATUS[0]}
mv "$work/gpu/training/transformer_gpu.pt" "$out/" 2>/dev/null
rm -f "$work/gpu/training/run/checkpoint.pt"  # optimizer state too: the exported model is what comes back
tar czf "$out/gpu_run.tar.gz" -C "$work" gpu gpu_run.log
exit "$status"
