"""The sandbox ``attn grade`` runs each submission in: bubblewrap (``bwrap``), no Docker.

One sandbox per submission holds its grading worker and kernel. Inside it sees
- the Python environment and the course library (``utils/`` only, at ``/course``), read-only;
- its private folder (the copy of the notebook, the plan, the results) at ``/grade``, the only
  writable place besides a private ``/tmp`` of ``TMP_BYTES``;
- ``/usr``, ``/etc``, ``/bin``, ``/lib*`` read-only, a minimal ``/dev`` and its own ``/proc``;
- nothing else: no home, no other submission, no ``solutions/``, no grades folder.
It has its own PID, network (empty: loopback only), IPC and UTS namespaces; bwrap dies with
the grader (``--die-with-parent``), and every process inside dies with bwrap's first process.
The kernel launcher (:mod:`utils.course.notebooks.grade_kernel`) adds the per-kernel caps: processes
(``RLIMIT_NPROC`` in a user namespace of its own), address space, file size.

As root, bwrap runs privileged (no user namespace) with only ``CAP_SETUID``/``CAP_SETGID`` kept,
and the worker's first act is to become ``SANDBOX_UID`` (nobody): Linux never enforces
``RLIMIT_NPROC`` on uid 0, and nobody owns no file of the machine. As another user, bwrap makes
a user namespace and the worker and kernel run as that user.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from utils.course.notebooks.grade_kernel import SANDBOX_UID, SANDBOX_VARIABLE

COURSE = "/course"  # where the course's `utils` package is mounted inside
PRIVATE = "/grade"  # where the submission's private folder is mounted inside
TMP_BYTES = 512 * 2**20
INSTALL = "sudo apt-get install bubblewrap (Debian/Ubuntu) or sudo dnf install bubblewrap (Fedora)"
MODES = ("auto", "require", "off")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")


def _runtime_dirs() -> list[str]:
    """The folders the Python interpreter and its packages live in (bound read-only)."""
    found: list[str] = []
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).resolve().parent.parent)):
        real = os.path.realpath(path)
        for candidate in (path, real):
            if candidate not in found and not any(candidate.startswith(f"{parent}/") for parent in SYSTEM_DIRS):
                found.append(candidate)
    return [path for path in found if os.path.isdir(path)]


def bwrap_args(private: Path, package_dir: Path, *, gpu: bool = False) -> list[str]:
    """The ``bwrap ...`` prefix that seals one submission's worker (run its command after it)."""
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() == 0:
        # privileged bwrap: no user namespace; keep only what the worker needs to become nobody
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    # the private /tmp first: what is bound below may live under /tmp (a clone there, its .venv)
    args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    made: list[str] = []  # bwrap makes missing parents 0700 as root: nobody could not pass them
    for destination in [*_runtime_dirs(), f"{COURSE}/{package_dir.name}"]:
        for parent in reversed(Path(destination).parents[:-1]):
            if str(parent) not in made:
                made.append(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _runtime_dirs():
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(package_dir), f"{COURSE}/{package_dir.name}",
             "--bind", str(private), PRIVATE,
             "--dev", "/dev", "--proc", "/proc", "--chdir", PRIVATE, "--setenv", "HOME", "/tmp", "--setenv", SANDBOX_VARIABLE, "1"]
    if gpu:
        for device in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(device), str(device)]
    return args


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """``None`` when a sandbox can be made on this machine, else why not (one line)."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL}"
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    args = bwrap_args(probe_dir, Path(__file__).resolve().parents[2])  # the course's utils/
    try:
        done = subprocess.run([*args, sys.executable, "-c", "pass"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot make a sandbox here ({last})"
    return None


def resolve(mode: str) -> bool:
    """Whether to sandbox, for ``--sandbox MODE``; raises ``RuntimeError`` (one line) to refuse."""
    if mode not in MODES:
        raise ValueError(f"--sandbox must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "off":
        return False
    problem = probe()
    if problem is None:
        return True
    if mode == "require":
        raise RuntimeError(f"--sandbox require: {problem}")
    raise RuntimeError(f"grading without a sandbox is refused: {problem}; or grade unsandboxed with "
                       "--sandbox off (only trusted notebooks)")


def describe() -> str:
    """One line for ``attn doctor``."""
    problem = probe()
    if problem is None:
        who = f"kernels run as uid {SANDBOX_UID}" if os.geteuid() == 0 else "kernels run as you"
        return f"grading sandbox: on (bubblewrap; {who}, no network, private files)"
    return f"grading sandbox: unavailable: {problem}"
