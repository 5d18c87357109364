"""Atomic file writes: a crash at any moment leaves either the old file or the new one.

Standard library only, so the training core can use it on a bare PyTorch machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it vanishes.

    The temporary file lives in the same folder (``os.replace`` is atomic only within one
    file system) and is flushed to disk with ``fsync`` before the rename; the folder is
    fsynced after it, so the rename itself survives a power cut. The new file keeps the
    permissions of the one it replaces (a new one gets what ``open`` would give it).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # mode 0o666 less the umask, as open() gives (mkstemp's 0600 would hide the file from others);
    # a replaced file's own permissions are kept
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, mode, encoding=encoding) as file:
            if path.exists():
                os.chmod(temporary, path.stat().st_mode & 0o7777)
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is done anyway
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
