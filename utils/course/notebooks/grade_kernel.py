"""Launch a grading kernel with limits: ``python grade_kernel.py -f CONNECTION_FILE``.

``attn grade`` points the kernelspec of a student's notebook at this script. It
applies the limits, then replaces itself with an ordinary ``ipykernel`` (same
process id), so the student's code runs in a normal kernel that
- dies of its own ``MemoryError`` instead of eating the machine: the data segment
  (heap and anonymous mappings) is capped with ``RLIMIT_DATA``. ``RLIMIT_AS`` would
  count torch's shared libraries too (3.6 GB of address space before any tensor);
- writes no core file when it crashes;
- is killed when the grading worker that started it dies (``PR_SET_PDEATHSIG``),
  because a kernel runs in a session of its own and escapes the worker's group.

Run by path (never ``-m``), so a student's folder on ``sys.path`` cannot shadow it;
it imports only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

MEMORY_VARIABLE = "ATTN_GRADE_MEMORY_BYTES"
PR_SET_PDEATHSIG = 1


def apply_limits(memory_bytes: int) -> None:
    """Cap this process's data segment at ``memory_bytes`` (0: no cap) and disable core files."""
    if memory_bytes > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> None:
    apply_limits(int(os.environ.get(MEMORY_VARIABLE, "0") or 0))
    die_with_parent()
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
