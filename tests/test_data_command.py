"""``attn data`` and the dependency rule of ``utils.data``."""

from __future__ import annotations

import ast
import hashlib
import socket
import sys
import zipfile
from pathlib import Path

from utils.course.cli import main
from utils.data import fra_eng
from utils.data.command import format_histogram


def test_generated_corpus_statistics(capsys):
    assert main(["data", "--generated", "400", "--min-freq", "1"]) == 0
    out = capsys.readouterr().out
    assert "generated corpus: 400 pairs" in out
    assert "vocabulary (from train, min_freq 1): English" in out
    assert "English sentence length (tokens, all splits):" in out and "#" in out


def test_local_file_statistics_and_checksum(tmp_path, capsys):
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\nbroken line\nRun!\tCours !\nHi.\tSalut.\n", encoding="utf-8")
    assert main(["data", "--data", str(path), "--min-freq", "1"]) == 0
    out = capsys.readouterr().out
    assert f"file: {path}" in out
    assert hashlib.sha1(path.read_bytes()).hexdigest() in out and "differs from the pinned" in out
    assert "3 pairs, 1 malformed lines" in out and "line 2: 'broken line'" in out


def test_verified_cached_file(tmp_path, capsys, monkeypatch):
    zip_path = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("fra-eng/fra.txt", "Go.\tVa !\nRun!\tCours !\n")
    monkeypatch.setattr(fra_eng, "FRA_ENG_SHA1", hashlib.sha1(zip_path.read_bytes()).hexdigest())
    assert main(["data", "--cache-dir", str(tmp_path), "--no-download", "--min-freq", "1"]) == 0
    out = capsys.readouterr().out
    assert "matches the pinned checksum" in out and "2 pairs, 0 malformed lines" in out


def test_missing_corpus_exits_non_zero_with_the_message(tmp_path, capsys, monkeypatch):
    assert main(["data", "--cache-dir", str(tmp_path), "--no-download"]) == 1
    captured = capsys.readouterr()
    assert "present: no" in captured.out
    assert fra_eng.FRA_ENG_URL in captured.err and str(tmp_path / "fra-eng.zip") in captured.err

    with socket.socket() as sock:  # offline: nothing listens on this port
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/fra-eng.zip"
    monkeypatch.setattr(fra_eng, "FRA_ENG_URL", url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert main(["data", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not available" in err and url in err and str(tmp_path / "fra-eng.zip") in err


def test_format_histogram_bins():
    lines = format_histogram({1: 5, 2: 10, 40: 1}, max_bins=4)
    assert len(lines) == 4 and lines[0].strip().startswith("1-10")
    assert format_histogram({3: 2}) == ["          3 | " + "#" * 40 + " 2"]


def test_utils_data_imports_only_torch_numpy_and_the_standard_library():
    """The dependency rule, read from the source (a fresh interpreter would cost seconds of torch import)."""
    allowed = set(sys.stdlib_module_names) | {"torch", "numpy", "utils", "__future__"}
    cli = Path(fra_eng.__file__).parent.parent / "command_line.py"  # `attn data` takes its argument types from it
    cli_imports = [alias.name if isinstance(node, ast.Import) else node.module
                   for node in ast.parse(cli.read_text(encoding="utf-8")).body
                   if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names]
    assert cli_imports and all(name.split(".")[0] in set(sys.stdlib_module_names) | {"__future__"}
                               for name in cli_imports), cli_imports
    for path in sorted(Path(fra_eng.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root == "utils":
                    assert name.startswith("utils.data") or name in ("utils.validate", "utils.command_line"), \
                        f"{path.name} imports {name}"
                elif root == "pooch":  # the downloader, imported when downloading only
                    assert path.name == "fra_eng.py" and id(node) not in top_level, path.name
                else:
                    assert root in allowed, f"{path.name} imports {name}"
