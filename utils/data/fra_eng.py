"""The real corpus: download, verify, read and parse the Tatoeba-derived fra-eng file.

The file is d2l 1.0.3's ``fra-eng.zip`` (``d2l.DATA_URL + 'fra-eng.zip'``),
fetched once with pooch into a cache folder and checked against a pinned SHA-1
after every download. pooch downloads into a temporary file and moves it into
place only when the hash matches, so a half-written or corrupt file is never
used; a cached file that no longer matches is deleted before fetching again.

pooch is imported inside the download function only, so reading a local file
works on a machine with nothing but PyTorch.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib.util
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from utils.validate import require_int

# Where d2l 1.0.3 downloads the corpus from, and the SHA-1 it pins.
FRA_ENG_URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
FRA_ENG_SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"
FRA_ENG_FILENAME = "fra-eng.zip"
CACHE_ENV_VAR = "COURSE_DATA_DIR"
CACHE_APP_NAME = "attention-step-by-step"

_SHOWN_LINE_NUMBERS = 5  # how many malformed line numbers a message lists


class CorpusUnavailable(RuntimeError):
    """The corpus is not in the cache and could not be downloaded (or did not verify)."""


class MalformedLinesWarning(UserWarning):
    """Some lines of the corpus file could not be parsed into an (English, French) pair."""


class ParseResult(NamedTuple):
    """What ``parse_pairs`` read.

    ``pairs``: the (English, French) pairs, in file order.
    ``malformed``: ``(line_number, line)`` for every line that is not a pair
    (line numbers start at 1).
    """

    pairs: list[tuple[str, str]]
    malformed: list[tuple[int, str]]


# ---------------------------------------------------------------- the cache


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder the corpus is cached in.

    ``cache_dir`` if given, else ``$COURSE_DATA_DIR``, else the user cache folder
    (``pooch.os_cache("attention-step-by-step")``, e.g.
    ``~/.cache/attention-step-by-step`` on Linux).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(CACHE_ENV_VAR, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    try:
        import pooch
    except ImportError:  # a bare PyTorch machine: the XDG default pooch would choose on Linux
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        return Path(base).expanduser() / CACHE_APP_NAME
    return Path(pooch.os_cache(CACHE_APP_NAME))


def fra_eng_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the cached ``fra-eng.zip`` is, or would be after downloading."""
    return default_cache_dir(cache_dir) / FRA_ENG_FILENAME


def file_sha1(path: str | os.PathLike) -> str:
    """The SHA-1 of a file, as 40 hex digits."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, sha1: str | None = None) -> bool:
    """Whether ``path`` exists and has the pinned SHA-1 (``FRA_ENG_SHA1`` unless given)."""
    expected = FRA_ENG_SHA1 if sha1 is None else sha1
    return Path(path).is_file() and file_sha1(path) == expected.lower()


def unavailable_message(url: str, sha1: str, target: Path, reason: str) -> str:
    return (
        f"The fra-eng corpus is not available: {reason}\n"
        f"Download it from\n    {url}\n(SHA-1 {sha1}) and save it as\n    {target}\n"
        f"or point to a copy you have: load_fra_eng(path=...) or `attn data --data PATH` "
        f"(a fra-eng.zip or its fra.txt). Set ${CACHE_ENV_VAR} to use another cache folder."
    )


def fetch_fra_eng(
    cache_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha1: str | None = None,
    progress: bool = False,
) -> Path:
    """The path of a verified ``fra-eng.zip`` in the cache, downloading it if needed.

    ``url`` and ``sha1`` default to the module constants ``FRA_ENG_URL`` and
    ``FRA_ENG_SHA1`` (read at call time, so tests can point them elsewhere).
    Raises ``CorpusUnavailable`` (with the URL and the exact cache path to put
    the file at) when the file cannot be downloaded or does not verify; no
    unverified file is left in the cache.
    """
    url = FRA_ENG_URL if url is None else url
    sha1 = (FRA_ENG_SHA1 if sha1 is None else sha1).lower()
    target = fra_eng_path(cache_dir)
    if target.is_file():
        if file_sha1(target) == sha1:
            return target
        # corrupt or truncated: never use it, and do not leave it behind if fetching fails
        target.unlink()
    try:
        import pooch
    except ImportError as error:
        raise CorpusUnavailable(
            unavailable_message(url, sha1, target, "pooch, the downloader, is not installed.")
        ) from error
    # pooch's progress bar needs tqdm, which a bare PyTorch machine may lack
    progress = progress and importlib.util.find_spec("tqdm") is not None
    try:
        fetched = pooch.retrieve(
            url,
            known_hash=f"sha1:{sha1}",
            fname=FRA_ENG_FILENAME,
            path=target.parent,
            progressbar=progress,
        )
    except Exception as error:  # offline, DNS, HTTP errors (requests), permissions (OSError)
        if isinstance(error, ValueError) and "hash" in str(error):
            # pooch checked its temporary file and deleted it: nothing is left in the cache
            reason = f"the downloaded file did not verify ({error}); nothing was kept."
        else:
            reason = f"downloading failed ({type(error).__name__}: {error})."
        raise CorpusUnavailable(unavailable_message(url, sha1, target, reason)) from error
    return Path(fetched)


# ---------------------------------------------------------------- reading


def parse_pairs(lines: Iterable[str], *, max_pairs: int | None = None) -> ParseResult:
    """(English, French) pairs from the lines of a fra-eng file.

    Accepts the 2-column (``English<TAB>French``) and the 3-column
    (``English<TAB>French<TAB>attribution``) formats, which give the same
    pairs. A line with another number of tabs or an empty side is reported in
    ``malformed`` with its 1-based line number, never silently dropped (a final
    empty line, from the file's last newline, is not a line). Each side is
    stripped of surrounding whitespace; the text is otherwise left as it is
    (``normalize`` is applied later). Stops after ``max_pairs`` pairs if given.
    """
    require_int("max_pairs", max_pairs, at_least=0, none_ok=True)
    if isinstance(lines, str):
        lines = lines.split("\n")
    pairs: list[tuple[str, str]] = []
    malformed: list[tuple[int, str]] = []
    pending_blank: tuple[int, str] | None = None  # a blank line counts only if a line follows
    for line_number, line in enumerate(lines, start=1):
        if max_pairs is not None and len(pairs) >= max_pairs:
            break
        line = line.rstrip("\r\n")
        if pending_blank is not None:
            malformed.append(pending_blank)
            pending_blank = None
        if not line:
            pending_blank = (line_number, line)
            continue
        columns = line.split("\t")
        if len(columns) in (2, 3):
            english, french = columns[0].strip(), columns[1].strip()
            if english and french:
                pairs.append((english, french))
                continue
        malformed.append((line_number, line))
    return ParseResult(pairs, malformed)


def _decode_utf8(data: bytes, name: str) -> str:
    """The text of ``data``; a ``ValueError`` naming ``name`` and the first bad byte's offset."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start  # in the file, not in the part after a byte-order mark
        line_number = data.count(b"\n", 0, offset) + 1
        raise ValueError(
            f"{name} is not UTF-8 text: byte offset {offset} (line {line_number}) is "
            f"0x{data[offset]:02x}. The fra-eng corpus is UTF-8; is this the right file?"
        ) from None


def read_corpus_text(path: str | os.PathLike) -> str:
    """The text of a fra-eng file: a ``fra.txt``, a zip holding one, or a folder holding one."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = [path / "fra.txt", path / "fra-eng" / "fra.txt", path / FRA_ENG_FILENAME]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"path={str(path)!r} is a folder without fra.txt or {FRA_ENG_FILENAME}")
        path = found
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such file (expected a fra.txt or fra-eng.zip)")
    if zipfile.is_zipfile(path):
        return _read_zipped_text(path)
    data = path.read_bytes()
    if data.startswith(_ZIP_MAGIC):  # a zip's first bytes, but no central directory at its end
        raise ValueError(_corrupt_archive(path, "it ends before the archive's table of contents: cut short?"))
    return _decode_utf8(data, str(path))


_ZIP_MAGIC = b"PK\x03\x04"


def _corrupt_archive(path: Path, reason: str) -> str:
    return (f"{path} is a corrupt zip archive ({reason}). Delete it and download fra-eng.zip again "
            f"(`attn data` fetches and verifies a fresh copy).")


def _read_zipped_text(path: Path) -> str:
    """The one fra.txt (or one .txt) of the zip at ``path``; a ``ValueError`` for corrupt archives."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            texts = [name for name in names if name.rsplit("/", 1)[-1] == "fra.txt"]
            if not texts:
                texts = [name for name in names if name.endswith(".txt")]
            if len(texts) != 1:
                raise ValueError(
                    f"{path} should hold one fra.txt (or one .txt file); it holds {names[:10]}"
                )
            data = archive.read(texts[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # bad CRC, damaged deflate data
        raise ValueError(_corrupt_archive(path, f"{type(error).__name__}: {error}")) from None
    except RuntimeError as error:  # zipfile's "File ... is encrypted, password required"
        raise ValueError(_corrupt_archive(path, f"{error}; the corpus is never encrypted")) from None
    return _decode_utf8(data, f"{path}:{texts[0]}")


def _describe_malformed(malformed: list[tuple[int, str]], source: str) -> str:
    shown = ", ".join(str(number) for number, _ in malformed[:_SHOWN_LINE_NUMBERS])
    more = ", …" if len(malformed) > _SHOWN_LINE_NUMBERS else ""
    first_number, first_line = malformed[0]
    return (
        f"{source}: {len(malformed)} malformed line(s) skipped (not 'English<TAB>French"
        f"[<TAB>attribution]' with both sides non-empty), at line(s) {shown}{more}; "
        f"line {first_number} is {first_line[:80]!r}"
    )


def load_fra_eng(
    path: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    max_pairs: int | None = None,
    strict: bool = False,
) -> list[tuple[str, str]]:
    """The raw (English, French) pairs of the fra-eng corpus, in file order.

    With ``path``: reads that local file (a ``fra.txt``, the ``fra-eng.zip``,
    or a folder with one of them); no checksum is required of it. Without:
    the verified ``fra-eng.zip`` from the cache, downloaded on first use (see
    ``fetch_fra_eng``; ``CorpusUnavailable`` when that is impossible).

    Malformed lines are reported with ``warnings.warn`` (a
    ``MalformedLinesWarning`` with their count and first line numbers), or
    raise ``ValueError`` with ``strict=True``. ``max_pairs`` keeps the first
    ``max_pairs`` pairs. A file that is not UTF-8 raises ``ValueError`` naming
    the file and the byte offset.
    """
    source = Path(path) if path is not None else fetch_fra_eng(cache_dir)
    result = parse_pairs(read_corpus_text(source).split("\n"), max_pairs=max_pairs)
    if result.malformed:
        message = _describe_malformed(result.malformed, str(source))
        if strict:
            raise ValueError(message)
        warnings.warn(message, MalformedLinesWarning, stacklevel=2)
    return result.pairs
