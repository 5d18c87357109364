"""Launch a grading kernel with limits: ``python grade_kernel.py -f CONNECTION_FILE``.

``attn grade`` points the kernelspec of a student's notebook at this script. It
applies the limits, then replaces itself with an ordinary ``ipykernel`` (same
process id), so the student's code runs in a normal kernel that
- dies of its own ``MemoryError`` instead of eating the machine: the data segment
  (heap and anonymous mappings) is capped with ``RLIMIT_DATA``. ``RLIMIT_AS`` would
  count torch's shared libraries too (3.6 GB of address space before any tensor);
- writes no core file when it crashes;
- is killed when the grading worker that started it dies (``PR_SET_PDEATHSIG``),
  because a kernel runs in a session of its own and escapes the worker's group;
- inside the grading sandbox (:mod:`utils.course.notebooks.sandbox`), also: runs as nobody when the
  sandbox was started by root, in a user namespace of its own where ``RLIMIT_NPROC`` caps the
  processes and threads it and its children may have (Linux counts them per user namespace),
  and may write no file larger than the memory cap. The address space (shared mappings
  included) is capped once torch & co. are imported (``grade_collect.prepare``).

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
SANDBOX_VARIABLE = "ATTN_GRADE_SANDBOX"  # the same name as utils.course.notebooks.sandbox's
SANDBOX_UID = 65534  # nobody
MAX_TASKS = 128  # processes and threads of one kernel and its children, in the sandbox
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
CLONE_NEWUSER = 0x10000000


def apply_limits(memory_bytes: int) -> None:
    """Cap this process's data segment at ``memory_bytes`` (0: no cap) and disable core files."""
    if memory_bytes > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_root() -> None:
    """As root (a sandbox started by root), become nobody: the grading worker does this first."""
    if os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(SANDBOX_UID)
    os.setuid(SANDBOX_UID)


def set_dumpable(dumpable: bool) -> None:
    """Non-dumpable: processes of the same user in a child namespace cannot ptrace this one."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)


def enter_sandbox_namespace(memory_bytes: int) -> None:
    """Enter a user namespace of one's own, where the caps on tasks and file sizes are per kernel."""
    drop_root()  # a no-op: the worker dropped it already
    set_dumpable(True)  # a uid change makes /proc/self root's: the maps below need it ours
    # read them before unshare: in the new namespace they read as the overflow id (65534) until
    # mapped, and an unprivileged process may map only its own ids (as root's nobody they were 65534)
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed: no process cap possible")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_TASKS, MAX_TASKS))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (memory_bytes, memory_bytes))


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
    memory_bytes = int(os.environ.get(MEMORY_VARIABLE, "0") or 0)
    apply_limits(memory_bytes)
    if os.environ.get(SANDBOX_VARIABLE) == "1":
        enter_sandbox_namespace(memory_bytes)
    die_with_parent()  # after the uid change, which clears the parent-death signal
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
