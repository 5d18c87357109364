"""utils.atomic.atomic_open: the old file or the new one, never half of either."""

from __future__ import annotations

import os
import stat

import pytest

from utils.atomic import atomic_open


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "file.json"
    with atomic_open(path, "w", encoding="utf-8") as file:
        file.write("new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["file.json"]


def test_an_error_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(path, "wb") as file:
        file.write(b"half of the new")
        raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_only_write_modes():
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'; got 'a'"), atomic_open("x", "a"):
        pass


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_new_file_gets_open_s_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "new.txt", "w") as file:  # mkstemp alone would make it 0600
            file.write("shared")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        with atomic_open(kept, "w") as file:
            file.write("new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(previous)
