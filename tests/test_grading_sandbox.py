"""`attn grade` in its sandbox: attacker notebooks graded beside honest ones, `--jobs 2`.

Every attack is a chapter-01 solution (so it would earn full points) with one hostile cell
added, or the blank chapter with hostile answers. Each attack must fail, or earn nothing,
and the honest notebooks of the same run must keep their full points. Skipped where bwrap
cannot make a sandbox, unless ATTN_REQUIRE_SANDBOX=1 (CI), where that is a failure: the
`kill -9 -1` case must never run outside a sandbox.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import nbformat
import pytest

from tests.test_grading import CHAPTER, SETUP, SOLUTION, lean, read, with_cell
from utils.course.checks.core import load_chapter
from utils.course.notebooks import sandbox

ROOT = Path(__file__).resolve().parent.parent
FULL = sum(exercise.points for exercise in load_chapter(1))
PROBLEM = sandbox.probe()
if PROBLEM is not None and os.environ.get("ATTN_REQUIRE_SANDBOX") != "1":
    pytest.skip(f"no grading sandbox here: {PROBLEM}", allow_module_level=True)
TAG = uuid.uuid4().hex[:12]  # names this run's marker files and daemon

STACK_WALK = '''import sys


def _steal(*args):
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            reference = getattr(value, "reference", None)
            if callable(reference):
                return reference(*args)
        frame = frame.f_back
    raise NotImplementedError("no reference found")


length_mask = my_masked_softmax = stable_softmax = sequence_mask = causal_masked_softmax = _steal'''
DAEMON = '''import subprocess
import sys

subprocess.Popen([sys.executable, "-c", "import time; time.sleep(40)  # attn-daemon-{tag}"], env={{}},
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)'''
FORK_BOMB = '''import os
import time

children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        children += 1
finally:
    print("forked", children)'''
KILL_ALL = '''import os

try:
    os.setsid()
except OSError:  # a kernel leads its session already
    pass
os.kill(-1, 9)'''
KILL_PARENTS = '''import os


def parent(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


pid = os.getppid()
while pid > 0:
    above = parent(pid)
    os.kill(pid, 9)
    pid = above'''


def build(folder: Path, out: Path, port: int) -> dict[str, str]:
    """Write the class; return file name -> the attack's source (honest ones: "")."""
    solution, blank = lean(read(SOLUTION)), read(CHAPTER)
    honest = folder / "01_honest.ipynb"
    targets = {
        "read_other": f"print(open({str(honest)!r}).read()[:100])",
        "read_solutions": f"print(open({str(SOLUTION)!r}).read()[:100])",
        "write_home": f"open({str(Path.home() / f'attn-pwned-{TAG}')!r}, 'w').write('x')",
        # succeeds, in the sandbox's own /tmp: nothing reaches the machine's
        "write_tmp": f"import shutil\n\nopen('/tmp/attn-pwned-{TAG}', 'w').write('x')\n"
                     f"shutil.copy('/tmp/attn-pwned-{TAG}', '../attn-pwned-copy-{TAG}')",
        "write_grades": f"open({str(out / 'grades.csv')!r}, 'w').write('forged')",
        "connect": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'{TAG}')",
        "daemon": DAEMON.format(tag=TAG),
        "shared_mmap": "import mmap\nblock = mmap.mmap(-1, 3 * 2**30, flags=mmap.MAP_SHARED)\n"
                       "for start in range(0, len(block), 2**20):\n    block[start] = 1",
        "fork_bomb": FORK_BOMB,
        # removes what it finds beside its working copy: in the sandbox, only its own files
        "vandal_up": "import os\nimport shutil\n\nos.chdir('..')\nfor name in os.listdir('.'):\n"
                     "    shutil.rmtree(name, ignore_errors=True) if os.path.isdir(name) else os.remove(name)",
    }
    attacks = {f"01_{name}.ipynb": source for name, source in targets.items()}
    for name, source in attacks.items():
        nbformat.write(with_cell(solution, source, after=SETUP), folder / name)
    # these earn nothing: kill their grading worker (and try the grader), or cheat
    for name, source in {"kill_parents": KILL_PARENTS, "kill_all": KILL_ALL}.items():
        nbformat.write(with_cell(solution, source, after=SETUP), folder / f"01_{name}.ipynb")
        attacks[f"01_{name}.ipynb"] = source
    nbformat.write(with_cell(blank, STACK_WALK), folder / "01_stack_walk.ipynb")
    forbidden = ("from utils.attention import masked_softmax\n\n\ndef my_masked_softmax(scores, valid_lens):\n"
                 "    return masked_softmax(scores, valid_lens)\n\n\n"
                 "from utils.course.checks.ch01 import reference_causal_masked_softmax as causal_masked_softmax")
    nbformat.write(with_cell(solution, forbidden), folder / "01_forbidden.ipynb")
    nbformat.write(solution, honest)
    nbformat.write(solution, folder / "01_honest_too.ipynb")
    return attacks


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("grades")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(1)
    received: list[bytes] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            received.append(connection.recv(100))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    attacks = build(folder, out, listener.getsockname()[1])
    mode = "require" if os.environ.get("ATTN_REQUIRE_SANDBOX") == "1" else "auto"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "utils.course.cli", "grade", str(folder), "--out", str(out), "--jobs", "2",
             "--timeout-cell", "30", "--timeout-notebook", "90", "--memory-limit", "2", "--sandbox", mode],
            capture_output=True, text=True, cwd=ROOT, timeout=1200)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert result.returncode == 0, result.stdout + result.stderr
    with (out / "grades.csv").open(newline="") as handle:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
    (out / "class.txt").write_text(str(folder))
    return out, rows, received, attacks


def graded_folder(out: Path) -> list[Path]:
    return sorted(Path((out / "class.txt").read_text()).glob("*.ipynb"))


def events(out: Path, name: str) -> str:
    return json.dumps(json.loads((out / f"{Path(name).stem}.json").read_text())["events"])


def test_honest_submissions_keep_full_points(graded):
    _, rows, _, _ = graded
    for name in ("01_honest.ipynb", "01_honest_too.ipynb"):
        assert (rows[name]["status"], int(rows[name]["points"])) == ("ok", FULL)


def test_files_outside_the_working_copy_cannot_be_read_or_written(graded):
    out, rows, _, _ = graded
    for name in ("read_other", "read_solutions", "write_home", "write_grades"):
        row = rows[f"01_{name}.ipynb"]
        assert (row["status"], int(row["points"])) == ("cell-errors", FULL), row
    assert (rows["01_write_tmp.ipynb"]["status"], int(rows["01_write_tmp.ipynb"]["points"])) == ("ok", FULL)
    assert "FileNotFoundError" in events(out, "01_read_other.ipynb")
    assert "FileNotFoundError" in events(out, "01_read_solutions.ipynb")
    assert not (Path.home() / f"attn-pwned-{TAG}").exists()
    assert list(Path("/tmp").glob(f"attn-pwned*{TAG}")) == []
    # the report shows what was denied: the error of the cell that tried
    assert "FileNotFoundError" in events(out, "01_write_grades.ipynb")
    for name in ("read_other", "read_solutions", "write_home", "write_grades"):
        blocked = json.loads((out / f"01_{name}.json").read_text())["blocked"]
        assert len(blocked) == 1 and "outside" in blocked[0], (name, blocked)
    assert "Denied by the sandbox" in (out / "01_read_other.md").read_text()
    assert set(rows) == {path.name for path in graded_folder(out)}  # grades.csv is the grader's, whole


def test_no_network(graded):
    out, rows, received, _ = graded
    assert received == []
    assert "network" in json.loads((out / "01_connect.json").read_text())["blocked"][0]
    assert (rows["01_connect.ipynb"]["status"], int(rows["01_connect.ipynb"]["points"])) == ("cell-errors", FULL)
    assert "ConnectionRefusedError" in events(out, "01_connect.ipynb") or \
        "Network is unreachable" in events(out, "01_connect.ipynb")


def test_no_process_outlives_its_sandbox(graded):
    _, rows, _, _ = graded
    assert (rows["01_daemon.ipynb"]["status"], int(rows["01_daemon.ipynb"]["points"])) == ("ok", FULL)
    survivors = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if f"attn-daemon-{TAG}".encode() in (entry / "cmdline").read_bytes():
                survivors.append(entry.name)
        except OSError:
            continue
    assert survivors == []


def test_memory_and_process_caps(graded):
    out, rows, _, _ = graded
    row = rows["01_shared_mmap.ipynb"]
    assert (row["status"], int(row["points"])) == ("cell-errors", FULL), row
    assert "Cannot allocate memory" in events(out, "01_shared_mmap.ipynb")
    row = rows["01_fork_bomb.ipynb"]
    # the bomb is stopped by the cap and reported, never fatal: the notebook is graded; while its
    # children live the kernel can garble its own messages (it cannot start threads under the cap),
    # and then the grader replaces the kernel, so the bomb may cost the points of the cell it broke
    assert row["status"] in ("cell-errors", "kernel-died") and int(row["points"]) > 0, row
    assert "Resource temporarily unavailable" in events(out, "01_fork_bomb.ipynb")
    assert "cap on processes" in json.loads((out / "01_fork_bomb.json").read_text())["blocked"][0]
    assert (rows["01_vandal_up.ipynb"]["status"], int(rows["01_vandal_up.ipynb"]["points"])) == ("ok", FULL)


def test_killing_the_grader_only_kills_ones_own_worker(graded):
    _, rows, _, _ = graded
    for name in ("01_kill_parents.ipynb", "01_kill_all.ipynb"):
        assert (rows[name]["status"], int(rows[name]["points"])) == ("worker-killed", 0), rows[name]
        assert "killed its grading worker" in rows[name]["message"]


def test_cheats_earn_nothing(graded):
    out, rows, _, _ = graded
    assert int(rows["01_stack_walk.ipynb"]["points"]) == 0
    report = json.loads((out / "01_forbidden.json").read_text())
    verdicts = {grade["id"]: grade for grade in report["exercises"]}
    assert verdicts["1.4"]["points"] == 0 and verdicts["1.4"]["verdict"] == "forbidden"
    assert "utils.attention.masking.masked_softmax" in verdicts["1.4"]["reason"]
    assert verdicts["1.5"]["points"] == 0
    assert "utils.course.checks.ch01.reference_causal_masked_softmax" in verdicts["1.5"]["reason"]
    assert verdicts["1.1"]["points"] == verdicts["1.1"]["max_points"]  # the honest answers still count


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_kernel_of_another_user_than_nobody_gets_its_own_namespace_and_caps():
    """As a grader that is not root, the kernel launcher runs as that user (uid 12345 here), not
    as nobody: it must map its own ids into its namespace, read before unshare (reading them
    after gives the overflow id 65534, and mapping that is refused)."""
    launcher = ROOT / "utils" / "course" / "notebooks" / "grade_kernel.py"
    code = (  # everything imported before the uid changes: uid 12345 may not read root's Python
        "import importlib.util, os, resource\n"
        f"spec = importlib.util.spec_from_file_location('grade_kernel', {str(launcher)!r})\n"
        "kernel = importlib.util.module_from_spec(spec); spec.loader.exec_module(kernel)\n"
        "os.setgroups([]); os.setgid(12345); os.setuid(12345)\n"
        "kernel.enter_sandbox_namespace(2**30)\n"
        "print(os.getuid(), os.getgid(), resource.getrlimit(resource.RLIMIT_NPROC)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12345", "12345", "128"]
