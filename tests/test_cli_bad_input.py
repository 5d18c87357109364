"""Every `attn` command under bad input: a non-zero exit and one line that names what is wrong.

What is accepted, the same for every case (``assert_one_line_error``):

- the exit status is non-zero (in a subprocess: positive, so not a signal);
- stderr holds no ``Traceback``;
- stderr's last line is ``attn COMMAND: error: ...`` and holds the expected fragment (the
  option and/or the value);
- every line before it is argparse's usage block (``usage: attn COMMAND ...`` and its indented
  continuation lines) or a one-line ``warning: ...``; nothing else.

Commands run in-process (``utils.course.cli.main`` is what the ``attn`` entry point runs); a few run
through the real entry point in a subprocess to show it behaves the same. No case trains or
grades anything: each fails before the work starts (the whole file takes seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.course.cli import COMMANDS, main

LONG = "a" * 5000  # longer than any file name the OS allows
ROOT = Path(__file__).resolve().parent.parent
NOT_UTF8 = "caf\udce9"  # how Python hands over the byte 0xE9 of a Latin-1 argv (surrogateescape)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Hostile inputs: an empty file, a PNG, text, non-UTF-8 bytes, a folder, a fake zip, a broken
    notebook, a notebook folder holding a checkpoint, and a real (2-step) checkpoint."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "empty.txt").write_bytes(b"")
    (d / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (d / "text.txt").write_text("hello world\n")
    (d / "latin1.txt").write_bytes("café\tcafé\n".encode("latin-1"))
    (d / "adir").mkdir()
    (d / "fake.zip").write_text("this is not a zip\n")
    (d / "broken.ipynb").write_text('{"cells": [')
    run = d / "run"
    status = main(["train", "--profile", "smoke", "--steps", "1", "--out", str(run), "--no-progress",
                   "--eval-sentences", "0", "--checkpoint-every", "0", "--device", "cpu"])
    assert status == 0
    (d / "pt_solutions").mkdir()
    (d / "pt_solutions" / "01_x.ipynb").write_bytes((run / "checkpoint.pt").read_bytes())
    (d / "nb_solutions").mkdir()
    (d / "nb_solutions" / "01_x.ipynb").write_text('{"cells": [')
    return d


# (argv, fragment of the error line); {d}: the fixture folder, {run}: the trained run's folder
CASES = [
    # attn (no such command)
    (["fly"], "invalid choice: 'fly'"),
    # attn doctor
    (["doctor", "--verbose"], "unrecognized arguments: --verbose"),
    (["doctor", "extra"], "unrecognized arguments: extra"),
    # attn translate
    (["translate", "hi"], "one of the arguments --checkpoint --pretrained is required"),
    (["translate", "hi", "--pretrained", "luong", "--checkpoint", "{run}"], "--checkpoint: not allowed with"),
    (["translate", "hi", "--pretrained", "nope"], "--pretrained: invalid choice: 'nope'"),
    (["translate", "hi", "--checkpoint", ""], "--checkpoint: must be a path; got ''"),
    (["translate", "hi", "--checkpoint", "{d}/nowhere"], "no checkpoint at"),
    (["translate", "hi", "--checkpoint", "{d}/adir"], "no checkpoint at"),
    (["translate", "hi", "--checkpoint", "{d}/pic.png"], "pic.png is not a readable checkpoint"),
    (["translate", "hi", "--checkpoint", "{d}/broken.ipynb"], "broken.ipynb is not a readable checkpoint"),
    (["translate", "hi", "--checkpoint", "{d}/empty.txt"], "empty.txt is not a readable checkpoint"),
    (["translate", "hi", "--checkpoint", "{d}/text.txt"], "text.txt is not a readable checkpoint"),
    (["translate", "hi", "--checkpoint", LONG], "File name too long: aaaa"),
    (["translate", "", "--pretrained", "luong"], "SENTENCE 1 is empty"),
    (["translate", "hi", "  ", "--pretrained", "luong"], "SENTENCE 2 is empty"),
    (["translate", "hi", "--pretrained", "luong", "--beam", "0"], "--beam: must be a whole number >= 1; got 0"),
    (["translate", "hi", "--pretrained", "luong", "--beam", "-3"], "--beam: must be a whole number >= 1; got -3"),
    (["translate", "hi", "--pretrained", "luong", "--beam", "2.5"], "--beam: must be a whole number >= 1; got '2.5'"),
    (["translate", "hi", "--pretrained", "luong", "--max-len", "0"], "--max-len: must be a whole number >= 1"),
    (["translate", "hi", "--pretrained", "luong", "--max-len", "nan"], "--max-len: must be a whole number >= 1; got 'nan'"),
    (["translate", "hi", "--pretrained", "luong", "--threads", "0"], "--threads: must be a whole number >= 1"),
    (["translate", "hi", "--pretrained", "luong", "--device", "banana"], "device must be 'cpu', 'cuda' or 'cuda:N'; got 'banana'"),
    (["translate", "hi", "--pretrained", "luong", "--device", "meta"], "device must be 'cpu', 'cuda' or 'cuda:N'; got 'meta'"),
    (["translate", "hi", "--pretrained", "luong", "--device", "mps"], "got 'mps'"),
    (["translate", "hi", "--pretrained", "luong", "--device", ""], "device must be 'cpu', 'cuda' or 'cuda:N'; got ''"),
    (["translate", "hi", "--pretrained", "luong", "--plot", "{d}/adir"], "--plot {d}/adir is a folder"),
    (["translate", "hi", "--pretrained", "luong", "--plot", "{d}/alignments"], "--plot {d}/alignments has no suffix"),
    (["translate", "hi", "--pretrained", "luong", "--plot", "{d}/nowhere/a.png"], "the folder {d}/nowhere does not exist"),
    (["translate", "hi", "--pretrained", "luong", "--plot", ""], "--plot: must be a path; got ''"),
    (["translate", "hi", "--pretrained", "plain", "--plot", "{d}/a.png"], "--plot: the plain decoder has no attention"),
    # attn evaluate
    (["evaluate"], "one of the arguments --checkpoint --pretrained is required"),
    (["evaluate", "--checkpoint", "{d}/pic.png"], "pic.png is not a readable checkpoint"),
    (["evaluate", "--pretrained", "luong", "--batch-size", "0"], "--batch-size: must be a whole number >= 1; got 0"),
    (["evaluate", "--pretrained", "luong", "--batch-size", "-1"], "--batch-size: must be a whole number >= 1; got -1"),
    (["evaluate", "--pretrained", "luong", "--batch-size", "inf"], "--batch-size: must be a whole number >= 1; got 'inf'"),
    (["evaluate", "--pretrained", "luong", "--max-sentences", "0"], "--max-sentences: must be a whole number >= 1"),
    (["evaluate", "--pretrained", "luong", "--examples", "-1"], "--examples: must be a whole number >= 0; got -1"),
    (["evaluate", "--pretrained", "luong", "--beam", "nan"], "--beam: must be a whole number >= 1; got 'nan'"),
    (["evaluate", "--pretrained", "luong", "--split", "dev"], "--split: invalid choice: 'dev'"),
    (["evaluate", "--pretrained", "luong", "--split", "valid"], "--split applies to a --checkpoint's own data"),
    (["evaluate", "--pretrained", "luong", "--data", "{d}/text.txt"], "--data locates a --checkpoint's own"),
    (["evaluate", "--checkpoint", "{run}", "--pairs", "{d}/text.txt", "--data", "{d}/text.txt"], "--data locates"),
    (["evaluate", "--pretrained", "luong", "--pairs", ""], "--pairs: must be a path; got ''"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/nowhere.tsv"], "--pairs {d}/nowhere.tsv: no such file"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/adir"], "--pairs {d}/adir: a folder, not a file"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/empty.txt"], "--pairs {d}/empty.txt holds no English<TAB>French pairs"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/pic.png"], "pic.png is not UTF-8 text"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/latin1.txt"], "latin1.txt is not UTF-8 text"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/text.txt"], "text.txt: 1 malformed line(s)"),
    (["evaluate", "--pretrained", "luong", "--pairs", LONG], "File name too long"),
    (["evaluate", "--checkpoint", "{run}", "--data", ""], "--data: must be a path; got ''"),
    (["evaluate", "--checkpoint", "{run}", "--data", "{d}/nowhere.txt"], "{d}/nowhere.txt is gone; point to it with --data"),
    (["evaluate", "--checkpoint", "{run}", "--data", "{d}/adir"], "adir' is a folder without fra.txt or fra-eng.zip"),
    (["evaluate", "--checkpoint", "{run}", "--data", "{d}/empty.txt"], "(empty.txt, split seed 0) holds no English<TAB>French pairs"),
    (["evaluate", "--checkpoint", "{run}", "--data", "{d}/fake.zip"], "(fake.zip, split seed 0) holds no English<TAB>French pairs"),
    (["evaluate", "--checkpoint", "{run}", "--data", "{d}/pic.png"], "pic.png is not UTF-8 text"),
    (["evaluate", "--checkpoint", "{run}", "--device", "meta"], "got 'meta'"),
    # attn train (each fails before a step runs)
    (["train", "--profile", "tiny"], "--profile: invalid choice: 'tiny'"),
    (["train", "--decoder", "gru"], "--decoder: invalid choice: 'gru'"),
    (["train", "--attention", "cosine"], "--attention: invalid choice: 'cosine'"),
    (["train", "--amp", "fp16"], "--amp: invalid choice: 'fp16'"),
    (["train", "--resume", "--overwrite"], "--overwrite: not allowed with argument --resume"),
    (["train", "--generated", "20", "--data", "fra-eng"], "--data: not allowed with argument --generated"),
    (["train", "--steps", "0"], "--steps: must be a whole number >= 1; got 0"),
    (["train", "--steps", "ten"], "--steps: must be a whole number >= 1; got 'ten'"),
    (["train", "--batch-size", "-4"], "--batch-size: must be a whole number >= 1; got -4"),
    (["train", "--embed-size", "0"], "--embed-size: must be a whole number >= 1; got 0"),
    (["train", "--num-hiddens", "1.5"], "--num-hiddens: must be a whole number >= 1; got '1.5'"),
    (["train", "--num-layers", ""], "--num-layers: must be a whole number >= 1; got ''"),
    (["train", "--lr", "0"], "--lr: must be a number in (0, inf); got 0"),
    (["train", "--lr=-inf"], "--lr: must be a number in (0, inf); got -inf"),
    (["train", "--lr", "nan"], "--lr: must be a number in (0, inf); got nan"),
    (["train", "--lr", "1e400"], "--lr: must be a number in (0, inf); got 1e400"),
    (["train", "--dropout", "1"], "--dropout: must be a number in [0, 1); got 1"),
    (["train", "--weight-decay", "-1"], "--weight-decay: must be a number in [0, inf); got -1"),
    (["train", "--clip-norm", "nan"], "--clip-norm: must be a number in [0, inf); got nan"),
    (["train", "--label-smoothing", "1"], "--label-smoothing: must be a number in [0, 1); got 1"),
    (["train", "--warmup-steps", "-1"], "--warmup-steps: must be a whole number >= 0; got -1"),
    (["train", "--seed", "-1"], "--seed: must be a whole number >= 0; got -1"),
    (["train", "--data-seed", "x"], "--data-seed: must be a whole number >= 0; got 'x'"),
    (["train", "--generated", "5"], "--generated: must be a whole number >= 10; got 5"),
    (["train", "--max-pairs", "5"], "--max-pairs: must be a whole number >= 10; got 5"),
    (["train", "--min-freq", "0"], "--min-freq: must be a whole number >= 1; got 0"),
    (["train", "--max-len", "1"], "--max-len: must be a whole number >= 2; got 1"),
    (["train", "--threads", "0"], "--threads: must be a whole number >= 1; got 0"),
    (["train", "--out", ""], "--out: must be a path; got ''"),
    (["train", "--profile", "smoke", "--out", "{d}/pic.png"], "--out {d}/pic.png is a file, not a folder"),
    (["train", "--profile", "smoke", "--out", "{d}/pic.png/run"], "--out {d}/pic.png/run cannot be written"),
    (["train", "--profile", "smoke", "--out", LONG], "File name too long: aaaa"),
    (["train", "--profile", "smoke", "--out", "{run}"], "already holds a run (checkpoint.pt): add --resume"),
    (["train", "--profile", "smoke", "--out", "{run}", "--resume", "--decoder", "plain"], "--decoder differ(s)"),
    (["train", "--profile", "cpu", "--out", "{run}", "--resume"], "other sizes than --profile cpu"),
    (["train", "--profile", "smoke", "--out", "{d}/t1", "--decoder", "plain", "--attention", "dot"],
     "--attention chooses the Luong score; the plain decoder has none"),
    (["train", "--profile", "smoke", "--out", "{d}/t2", "--data", ""], "--data: must be a path; got ''"),
    (["train", "--profile", "smoke", "--out", "{d}/t3", "--data", "{d}/nowhere.txt"], "--data {d}/nowhere.txt: no such file"),
    (["train", "--profile", "smoke", "--out", "{d}/t4", "--data", "{d}/empty.txt"], "(empty.txt, split seed 0) holds no"),
    (["train", "--profile", "smoke", "--out", "{d}/t5", "--data", "{d}/fake.zip"], "(fake.zip, split seed 0) holds no"),
    (["train", "--profile", "smoke", "--out", "{d}/t6", "--data", "{d}/pic.png"], "pic.png is not UTF-8 text"),
    (["train", "--profile", "smoke", "--out", "{d}/t7", "--data", "{d}/latin1.txt"], "latin1.txt is not UTF-8 text"),
    (["train", "--profile", "smoke", "--out", "{d}/t8", "--data", "{d}/adir"], "adir' is a folder without fra.txt"),
    (["train", "--profile", "smoke", "--out", "{d}/t9", "--data", LONG], "File name too long"),
    (["train", "--profile", "smoke", "--out", "{d}/t10", "--device", "meta"], "got 'meta'"),
    (["train", "--profile", "smoke", "--out", "{d}/t11", "--device", "cuda:x"], "got 'cuda:x'"),
    # attn data
    (["data", "--generated", "0"], "--generated: must be a whole number >= 1; got 0"),
    (["data", "--generated", "abc"], "--generated: must be a whole number >= 1; got 'abc'"),
    (["data", "--generated", "50", "--min-freq", "0"], "--min-freq: must be a whole number >= 1; got 0"),
    (["data", "--generated", "50", "--seed", "-1"], "--seed: must be a whole number >= 0; got -1"),
    (["data", "--generated", "50", "--data", "{d}/text.txt"], "--data: not allowed with argument --generated"),
    (["data", "--data", "{d}/text.txt", "--cache-dir", "{d}/adir"], "--cache-dir: not allowed with argument --data"),
    (["data", "--data", ""], "--data: must be a path; got ''"),
    (["data", "--data", "{d}/nowhere.txt"], "--data {d}/nowhere.txt: no such file"),
    (["data", "--data", "{d}/adir"], "adir' is a folder without fra.txt or fra-eng.zip"),
    (["data", "--data", "{d}/empty.txt"], "{d}/empty.txt holds no English<TAB>French pairs"),
    (["data", "--data", "{d}/fake.zip"], "{d}/fake.zip holds no English<TAB>French pairs"),
    (["data", "--data", "{d}/pic.png"], "pic.png is not UTF-8 text: byte offset 0"),
    (["data", "--data", "{d}/latin1.txt"], "latin1.txt is not UTF-8 text: byte offset 3"),
    (["data", "--data", LONG], "File name too long"),
    (["data", "--cache-dir", "{d}/pic.png", "--no-download"], "--cache-dir {d}/pic.png is a file, not a folder"),
    (["data", "--cache-dir", "", "--no-download"], "--cache-dir: must be a path; got ''"),
    # attn grade (each fails before a notebook is run)
    (["grade"], "the following arguments are required: SUBMISSION"),
    (["grade", "{d}/adir", "--out", "{d}/g"], "no files to grade in {d}/adir"),
    (["grade", "{d}/broken.ipynb", "--out", "{d}/pic.png"], "--out {d}/pic.png is a file, not a folder"),
    (["grade", "{d}/broken.ipynb", "--out", ""], "--out: must be a path; got ''"),
    (["grade", "{d}/broken.ipynb", "--chapter", "99"], "--chapter: invalid choice: 99"),
    (["grade", "{d}/broken.ipynb", "--chapter", "-1"], "--chapter: invalid choice: -1"),
    (["grade", "{d}/broken.ipynb", "--chapter", "one"], "--chapter: invalid int value: 'one'"),
    (["grade", "{d}/broken.ipynb", "--jobs", "0"], "--jobs: must be a whole number >= 1; got 0"),
    (["grade", "{d}/broken.ipynb", "--timeout-cell", "-1"], "--timeout-cell: must be a whole number >= 1; got -1"),
    (["grade", "{d}/broken.ipynb", "--timeout-notebook", "0"], "--timeout-notebook: must be a whole number >= 1"),
    (["grade", "{d}/broken.ipynb", "--timeout-startup", "1.5"], "--timeout-startup: must be a whole number >= 1"),
    (["grade", "{d}/broken.ipynb", "--memory-limit", "nan"], "--memory-limit: must be a number in (0, 1024); got nan"),
    (["grade", "{d}/broken.ipynb", "--memory-limit", "inf"], "--memory-limit: must be a number in (0, 1024); got inf"),
    (["grade", "{d}/broken.ipynb", "--memory-limit", "0"], "--memory-limit: must be a number in (0, 1024); got 0"),
    (["grade", "{d}/broken.ipynb", "--max-output", "1e308"], "--max-output: must be a number in (0, 1024); got 1e308"),
    (["grade", "{d}/broken.ipynb", "--profile", "gpu2"], "--profile: invalid choice: 'gpu2'"),
    # attn release
    (["release", "--solutions", "{d}/nowhere"], "--solutions {d}/nowhere: not found"),
    (["release", "--solutions", "{d}/pic.png"], "--solutions {d}/pic.png: is a file, not a folder"),
    (["release", "--solutions", ""], "--solutions: must be a path; got ''"),
    (["release", "--solutions", "{d}/nb_solutions", "--chapters", "{d}/pic.png"], "--chapters {d}/pic.png is a file"),
    (["release", "--solutions", "{d}/nb_solutions", "--chapters", "{d}/ch1"], "01_x.ipynb is not a readable notebook"),
    (["release", "--solutions", "{d}/pt_solutions", "--chapters", "{d}/ch2"], "01_x.ipynb is not a readable notebook"),
    (["release", "--solutions", "{d}/nb_solutions", "--chapters", "{d}/ch3", "99_x.ipynb"], "no such notebook"),
    (["release", "--solutions", LONG], "File name too long"),
    # attn pooling (each fails before training)
    (["pooling", "--profile", "huge"], "--profile: invalid choice: 'huge'"),
    (["pooling", "--threads", "0"], "--threads: must be a whole number >= 1; got 0"),
    (["pooling", "--seed", "-1"], "--seed: must be a whole number >= 0; got -1"),
    (["pooling", "--out", ""], "--out: must be a path; got ''"),
    (["pooling", "--profile", "smoke", "--out", "{d}/pic.png"], "--out {d}/pic.png is a file, not a folder"),
    (["pooling", "--profile", "smoke", "--out", LONG], "File name too long: aaaa"),
]


def _fill(text: str, files) -> str:
    return text.replace("{d}", str(files)).replace("{run}", str(files / "run"))


def assert_one_line_error(command: str, status: int, err: str, fragment: str) -> None:
    assert status != 0, f"exit status 0; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    *before, last = lines
    assert last.startswith(f"attn {command}: error: ") or (command == "" and last.startswith("attn: error: ")), last
    assert fragment in last, f"{fragment!r} not in {last!r}"
    usage = [line for line in before if not line.startswith("warning: ")]
    if usage:
        assert usage[0].startswith(f"usage: attn {command}".rstrip()), before
        assert all(line.startswith(" ") for line in usage[1:]), before


def test_the_table_covers_every_command():
    assert {argv[0] for argv, _ in CASES} == {*COMMANDS, "fly"}


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(argv)[:60] for argv, _ in CASES])
def test_bad_input_is_a_one_line_error(argv, fragment, files, capsys, monkeypatch):
    monkeypatch.chdir(files)  # a default --out (runs/...) lands in the fixture folder, never the repository
    monkeypatch.setenv("COURSE_DATA_DIR", str(files / "cache"))  # never the user's download cache
    argv = [_fill(arg, files) for arg in argv]
    status = main(argv)
    err = capsys.readouterr().err
    command = argv[0] if argv[0] in COMMANDS else ""
    assert_one_line_error(command, status, err, _fill(fragment, files))


def test_a_file_that_cannot_be_read_is_a_one_line_error(files, capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file: no unreadable file can be made")
    secret = tmp_path / "fra.txt"
    secret.write_text("Hi.\tSalut.\n")
    secret.chmod(0)
    for argv in (["data", "--data", str(secret)], ["evaluate", "--pretrained", "luong", "--pairs", str(secret)],
                 ["translate", "hi", "--checkpoint", str(secret)]):
        assert_one_line_error(argv[0], main(argv), capsys.readouterr().err, "ermission denied")


@pytest.mark.parametrize("argv, fragment", [
    (["translate", NOT_UTF8, "--pretrained", "nope"], "--pretrained: invalid choice: 'nope'"),
    (["data", "--data", f"{{d}}/{NOT_UTF8}.txt"], f"--data {{d}}/{NOT_UTF8}.txt: no such file"),
    (["train", "--steps", "-1"], "--steps: must be a whole number >= 1; got -1"),
    (["evaluate", "--pretrained", "luong", "--pairs", "{d}/latin1.txt"], "latin1.txt is not UTF-8 text"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_the_entry_point_behaves_the_same(argv, fragment, files):
    """The real process: what a shell runs (argv bytes that are not UTF-8 included)."""
    argv = [os.fsencode(_fill(arg, files)) for arg in argv]
    env = {**os.environ, "COURSE_DATA_DIR": str(files / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable.encode(), b"-m", b"utils.course.cli", *argv], capture_output=True,
                            timeout=600, cwd=files, env=env)
    err = result.stderr.decode("utf-8", errors="backslashreplace")
    assert result.returncode > 0, (result.returncode, err)  # negative: killed by a signal
    command = os.fsdecode(argv[0]) if os.fsdecode(argv[0]) in COMMANDS else ""
    expected = _fill(fragment, files).encode("utf-8", errors="backslashreplace").decode()  # as stderr writes it
    assert_one_line_error(command, result.returncode, err, expected)

