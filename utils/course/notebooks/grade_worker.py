"""One submission, one process: ``python -m utils.course.notebooks.grade_worker PLAN.json``.

``attn grade`` starts this worker in a process group of its own and kills the
group (and every process carrying the submission's token) when it runs past the
hard limit, so nothing a notebook does can hang the grader. The worker
1. runs the notebook's code cells in a fresh kernel (limits: per cell, per notebook,
   memory via :mod:`utils.course.notebooks.grade_kernel`), in a private copy of the
   notebook in a temporary folder; cell errors are allowed and recorded;
2. when a cell cannot be stopped (a loop that swallows ``KeyboardInterrupt``) or
   kills the kernel (``os._exit``, a segfault), starts a fresh kernel that skips
   that cell, while the notebook's time budget lasts, so the rest still counts;
3. sends :mod:`utils.course.notebooks.grade_collect` to the kernel once per exercise and
   ships back the saved outcomes (bytes, base64) as one JSON line on its stdout.
It judges nothing: the verdicts are made by the grader, from a registry the
notebook never saw.

The notebook's outputs are not kept: only their size (a cell printing more than
``max_output_bytes`` is interrupted) and its errors.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from utils.course.notebooks.grade_collect import kernel_source
from utils.course.notebooks.grade_kernel import (
    MEMORY_VARIABLE,
    SANDBOX_VARIABLE,
    drop_root,
    set_dumpable,
)

TOKEN_VARIABLE = "ATTN_GRADE_TOKEN"
PROBE_SECONDS = 10  # how long an interrupted kernel gets to show it is responsive again
MAX_RESULT_BYTES = 64 * 2**20
# imported before the student's cells when the notebook imports them: they take seconds to load
HEAVY_MODULES = {"torch", "torchvision", "numpy", "matplotlib", "d2l", "pandas", "scipy", "sacrebleu"}


def inputs_file(exercise_id: str) -> str:
    """The file, in the private folder, where the grader leaves an exercise's inputs."""
    return f"inputs-{exercise_id}.pt"


def heavy_imports(notebook) -> list[str]:
    """The modules of ``HEAVY_MODULES`` the notebook's code cells import, in order.

    ``from d2l import torch`` lists ``d2l`` and ``d2l.torch`` (a name that is not a
    submodule fails to import, harmlessly).
    """
    found: list[str] = []
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        lines = [line for line in str(cell.get("source", "")).splitlines()
                 if not line.lstrip().startswith(("%", "!"))]  # IPython magics are not Python
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                         if alias.name != "*"]
            else:
                continue
            found += [name for name in names if name.split(".")[0] in HEAVY_MODULES and name not in found]
    return found


def cell_title(cell) -> str:
    """The first non-empty line of a cell's source, shortened: how a report names a cell."""
    for line in str(cell.get("source", "")).splitlines():
        if line.strip():
            return line.strip()[:60]
    return ""


FALLBACK_FACTOR = 4  # the client interrupts a cell only at this many times the output limit


class GradingClient(NotebookClient):
    """A notebook client that keeps no outputs: it counts their bytes and records errors.

    A cell whose output passes ``FALLBACK_FACTOR * max_output_bytes`` is interrupted (once).
    """

    def __init__(self, nb, *, max_output_bytes: int, **kw):
        super().__init__(nb, **kw)
        self.max_output_bytes = max_output_bytes
        self.output_bytes: dict[int, int] = {}
        self.errors: dict[int, dict] = {}
        self.interrupted_for_output: set[int] = set()
        self._pending: list[asyncio.Future] = []

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            self.errors[cell_index] = {
                "ename": str(content.get("ename", ""))[:200],
                "evalue": str(content.get("evalue", ""))[:500],
            }
        size = len(str(content.get("text", ""))) + sum(len(str(value)) for value in
                                                         content.get("data", {}).values())
        total = self.output_bytes.get(cell_index, 0) + size
        self.output_bytes[cell_index] = total
        # The kernel-side cap (grade_collect._cap_output) stops a chatty cell itself; an interrupt
        # sent at the same moment can land inside ipykernel's output machinery and wedge the
        # kernel. So interrupt from here only for output that bypassed that cap (e.g. written to
        # the file descriptor directly), well past the limit.
        if total > FALLBACK_FACTOR * self.max_output_bytes and cell_index not in self.interrupted_for_output:
            self.interrupted_for_output.add(cell_index)
            self._pending.append(asyncio.ensure_future(self.km.interrupt_kernel()))
        return None


class KernelLost(Exception):
    """The kernel died or could not be stopped: this attempt is over."""


GARBLED = ("its messages could not be read (a process the cell forked wrote on the kernel's channels); "
           "the kernel was replaced")


def _garbled(error: ValueError) -> bool:
    """jupyter_client's verdict on a message whose signature does not match: the kernel's channels
    carry bytes the kernel did not sign, e.g. from processes a cell forked. The notebook's doing."""
    return str(error).startswith("Invalid Signature")


class Worker:
    def __init__(self, plan: dict):
        self.plan = plan
        self.private = Path(plan["private"])
        self.spent = 0.0  # seconds of the notebook's own cells, over all attempts
        self.events: list[dict] = []
        self.skip: set[int] = set()
        self.client: GradingClient | None = None
        self.workdirs: list[Path] = []

    # ---- the kernel -------------------------------------------------------------------
    def _kernelspec(self) -> Path:
        """A ``python3`` kernelspec that starts the kernel through the limiting wrapper."""
        root = self.private / "jupyter"
        spec_dir = root / "kernels" / "python3"
        spec_dir.mkdir(parents=True, exist_ok=True)
        wrapper = Path(__file__).with_name("grade_kernel.py")
        spec = {"argv": [sys.executable, str(wrapper), "-f", "{connection_file}"],
                "display_name": "Python 3 (attn grade)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        return root

    def _environment(self, jupyter_path: Path) -> None:
        package_root = str(Path(self.plan["package_dir"]).parent)
        os.environ.update({
            "JUPYTER_PATH": str(jupyter_path),
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
            "COURSE_PROFILE": self.plan["profile"],
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "OMP_NUM_THREADS": str(self.plan["threads"]),
            MEMORY_VARIABLE: str(self.plan["memory_bytes"]),
            TOKEN_VARIABLE: self.plan["token"],
        })

    def _start(self, attempt: int) -> GradingClient:
        # named after the token, so the grader can remove it if it has to kill this worker
        workdir = Path(tempfile.mkdtemp(prefix=f"attn-grade-work-{self.plan['token']}-"))
        self.workdirs.append(workdir)
        shutil.copyfile(self.plan["notebook"], workdir / self.plan["name"])
        notebook = nbformat.read(workdir / self.plan["name"], as_version=4)
        self._environment(self._kernelspec())
        client = GradingClient(
            notebook, kernel_name="python3", timeout=self.plan["timeout_cell"], allow_errors=True,
            interrupt_on_timeout=False, shutdown_kernel="immediate", record_timing=False,
            startup_timeout=self.plan["timeout_startup"],
            max_output_bytes=self.plan["max_output_bytes"],
            resources={"metadata": {"path": str(workdir)}})
        client.km = client.create_kernel_manager()
        client.start_new_kernel(cwd=str(workdir))
        client.start_new_kernel_client()
        self.client = client
        return client

    def _stop(self) -> None:
        if self.client is not None and self.client.km is not None:
            try:
                self.client._cleanup_kernel()
            except Exception as error:  # a kernel that is already gone
                print(f"cleanup: {error!r}", file=sys.stderr)
        self.client = None

    def _exit_description(self) -> str:
        process = getattr(getattr(self.client.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "the kernel died"
        if code < 0:
            signals = {-9: "SIGKILL, e.g. out of memory", -11: "a segmentation fault", -6: "an abort"}
            return f"the kernel crashed (signal {-code}: {signals.get(code, 'killed')})"
        return f"the kernel exited with status {code} (e.g. os._exit or a crash)"

    def remaining(self) -> float:
        return self.plan["timeout_notebook"] - self.spent

    def event(self, kind: str, detail: str, cell: int | None = None, **extra) -> None:
        entry = {"kind": kind, "detail": detail, "cell": cell, **extra}
        if cell is not None:
            entry["cell_title"] = cell_title(self.client.nb.cells[cell]) if self.client else ""
        self.events.append(entry)

    # ---- running cells ----------------------------------------------------------------
    def _run_cell(self, index: int, timeout: float) -> str:
        """Run one cell; 'ok', 'error', 'timeout' (stopped by an interrupt). Raises KernelLost."""
        client = self.client
        client.timeout = max(1, int(timeout))
        started = time.monotonic()
        try:
            self._execute(client.nb.cells[index], index)
        except CellTimeoutError:
            self._interrupt()
            if not self._responsive():
                raise KernelLost("did-not-stop") from None
            return "timeout"
        finally:
            self.spent += time.monotonic() - started
        return "error" if index in client.errors else "ok"

    def _execute(self, cell, index: int, **options) -> None:
        """``client.execute_cell``; a kernel that died, or whose messages arrive garbled, raises KernelLost."""
        try:
            self.client.execute_cell(cell, index, **options)
        except DeadKernelError:
            raise KernelLost(self._exit_description()) from None
        except ValueError as error:
            if not _garbled(error):
                raise
            raise KernelLost(GARBLED) from None

    def _interrupt(self) -> None:
        try:
            run_sync(self.client.km.interrupt_kernel)()
        except Exception as error:
            print(f"interrupt: {error!r}", file=sys.stderr)

    def _responsive(self) -> bool:
        """After an interrupt: does the kernel finish a trivial cell within PROBE_SECONDS?"""
        try:
            return self._run_extra("None", PROBE_SECONDS) == "ok"
        except KernelLost:
            return False

    def _run_extra(self, source: str, timeout: float) -> str:
        """Run code that is not part of the notebook (a probe, the grader's collection)."""
        cells = self.client.nb.cells
        cells.append(nbformat.v4.new_code_cell(source))
        index = len(cells) - 1
        try:
            client = self.client
            client.timeout = max(1, int(timeout))
            try:
                self._execute(cells[index], index, store_history=False)
            except CellTimeoutError:
                return "timeout"
            error = client.errors.pop(index, None)
            return "ok" if error is None else f"error: {error['ename']}: {error['evalue']}"
        finally:
            cells.pop()
            self.client.output_bytes.pop(index, None)

    def _attempt(self, attempt: int) -> bool:
        """Run the notebook once, skipping ``self.skip``. True when the kernel is still usable."""
        try:
            client = self._start(attempt)
            params = {"warm": heavy_imports(client.nb), "max_output_chars": self.plan["max_output_bytes"],
                      "memory_bytes": self.plan["memory_bytes"]}
            prepared = self._run_extra(kernel_source("prepare", params), self.plan["timeout_startup"])
        except Exception as error:  # KernelLost, or a kernel that never answered
            self.event("kernel_start_failed", f"the kernel did not start: {error}"[:300])
            return False
        if prepared != "ok":
            self.event("kernel_start_failed", f"the kernel did not start ({prepared} after "
                       f"{self.plan['timeout_startup']} s importing {', '.join(params['warm'])})")
            return False
        for index, cell in enumerate(client.nb.cells):
            if cell.cell_type != "code" or index in self.skip or not cell.source.strip():
                continue
            if self.remaining() <= 0:
                self.event("notebook_timeout", f"the notebook ran past its {self.plan['timeout_notebook']} s "
                           "limit; the cells from here on did not run", cell=index)
                return True
            timeout = min(self.plan["timeout_cell"], self.remaining())
            try:
                status = self._run_cell(index, timeout)
            except KernelLost as lost:
                self.skip.add(index)
                if str(lost) == "did-not-stop":
                    detail = (f"the cell ran past {int(timeout)} s and ignored the interrupt; the "
                              "kernel was killed")
                    self.event("cell_timeout", detail, cell=index, attempt=attempt, fatal=True)
                else:
                    self.event("kernel_died", f"{lost} while running this cell", cell=index,
                               attempt=attempt, fatal=True)
                return False
            # on a busy machine a flood of output can outlast the cell's time before the cap
            # stops it: what it printed, not the clock, is then what happened
            flooded = client.output_bytes.get(index, 0) >= self.plan["max_output_bytes"]
            if status == "timeout" and not flooded:
                self.event("cell_timeout", f"the cell ran past {int(timeout)} s and was interrupted",
                           cell=index, attempt=attempt)
            elif flooded or index in client.interrupted_for_output or (
                    status == "error" and client.errors[index]["ename"] == "OutputLimitExceeded"):
                self.event("output_limit", f"the cell printed more than "
                           f"{self.plan['max_output_bytes'] // 2**20} MB and was interrupted", cell=index,
                           attempt=attempt)
            elif status == "error":
                error = client.errors[index]
                detail = f"{error['ename']}: {error['evalue']}".strip().rstrip(":")
                if error["ename"] == "MemoryError":
                    detail += f" (a kernel may use {self.plan['memory_bytes'] / 2**30:g} GiB)"
                self.event("cell_error", detail[:300], cell=index, attempt=attempt)
        return True

    def run_notebook(self) -> bool:
        for attempt in range(1, self.plan["max_attempts"] + 1):
            if attempt > 1:
                self._stop()
                if self.remaining() <= 5:
                    self.event("notebook_timeout", "no time left to re-run the notebook without the "
                               "cells that stopped the kernel")
                    return False
                # only the last attempt's cell errors are reported; fatal events stay
                self.events = [event for event in self.events if event.get("fatal")
                               or event.get("attempt") is None]
            if self._attempt(attempt):
                return True
            if not any(event.get("fatal") and event.get("attempt") == attempt for event in self.events):
                return False  # the kernel did not start: a retry would not help
        self.event("gave_up", f"the kernel was lost {self.plan['max_attempts']} times; giving up")
        return False

    # ---- the grader's checks ----------------------------------------------------------
    def collect(self) -> dict:
        results = {}
        alive = self.client is not None
        for exercise_id in self.plan["exercises"]:
            if not alive:
                results[exercise_id] = {"status": "not_collected",
                                        "detail": "the notebook's kernel was lost before grading"}
                continue
            path = self.private / f"result-{self.plan['token']}-{exercise_id}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            params = {"package_dir": self.plan["package_dir"], "chapter": self.plan["chapter"],
                      "exercise": exercise_id, "result_path": str(path),
                      "inputs_path": str(self.private / inputs_file(exercise_id))}
            entry = {"status": "collected", "detail": ""}
            try:
                status = self._run_extra(kernel_source("collect", params), self.plan["timeout_cell"])
            except KernelLost as lost:
                status, alive = f"lost: {lost}", False
            if status == "timeout":
                self._interrupt()
                alive = self._responsive()
                entry.update(status="timeout", detail=f"your code ran past {self.plan['timeout_cell']} s")
            elif status != "ok":
                entry.update(status="grader_error", detail=f"the grader's code failed in the kernel ({status})")
            try:
                if path.is_file() and path.stat().st_size <= MAX_RESULT_BYTES:
                    entry["data"] = base64.b64encode(path.read_bytes()).decode("ascii")
            except OSError:
                pass
            path.unlink(missing_ok=True)
            results[exercise_id] = entry
        return results

    def run(self) -> dict:
        try:
            usable = self.run_notebook()
            if not usable:
                self._stop()
            exercises = self.collect()
        finally:
            self._stop()
            for workdir in self.workdirs:
                shutil.rmtree(workdir, ignore_errors=True)
        return {"events": self.events, "skipped_cells": sorted(self.skip), "exercises": exercises}


def main(argv: list[str]) -> int:
    if os.environ.get(SANDBOX_VARIABLE) == "1":
        drop_root()
        set_dumpable(False)  # the kernel, same user, must not ptrace this process or open its fds
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # The kernel inherits fds 1 and 2: point them at /dev/null so nothing it writes at the
    # file-descriptor level reaches the grader. The result goes out on a copy of stdout.
    result_stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    log = open(Path(plan["private"]) / "worker.log", "w", encoding="utf-8")  # noqa: SIM115
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = log
    sys.stderr = log
    result = Worker(plan).run()
    result_stream.write(json.dumps(result) + "\n")
    result_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
