"""The fra-eng loader: download, verification, cache, parsing. No test touches the network:
downloads come from an ``http.server`` thread on 127.0.0.1 serving a zip built here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import socket
import threading
import warnings
import zipfile
from pathlib import Path

import pytest

from utils.data import (
    CorpusUnavailable,
    MalformedLinesWarning,
    fra_eng,
    fra_eng_path,
    load_fra_eng,
    parse_pairs,
    read_corpus_text,
)

LINES_2 = ["Go.\tVa !", "Run!\tCours\u202f!", "I'm cold.\tJ'ai froid."]
LINES_3 = [line + "\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)"
           for line in LINES_2]
PAIRS = [("Go.", "Va !"), ("Run!", "Cours\u202f!"), ("I'm cold.", "J'ai froid.")]


def _write_zip(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:  # the layout of d2l's fra-eng.zip
        archive.writestr("fra-eng/", "")
        archive.writestr("fra-eng/fra.txt", text.encode("utf-8"))
    return path


class _Server:
    """Serves one folder over HTTP on 127.0.0.1 and counts the requests."""

    def __init__(self, folder: Path):
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                super().do_GET()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def served_zip(tmp_path, monkeypatch, no_proxy):
    """A tiny fra-eng.zip on a local server; the module's URL and SHA-1 point at it."""
    folder = tmp_path / "served"
    folder.mkdir()
    zip_path = _write_zip(folder / "fra-eng.zip", "\n".join(LINES_2) + "\n")
    server = _Server(folder)
    server.zip_bytes = zip_path.read_bytes()
    monkeypatch.setattr(fra_eng, "FRA_ENG_URL", server.url("fra-eng.zip"))
    monkeypatch.setattr(fra_eng, "FRA_ENG_SHA1", hashlib.sha1(zip_path.read_bytes()).hexdigest())
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_default_url_and_checksum_are_d2l_103s():
    spec = importlib.util.find_spec("d2l")
    if spec is None:
        pytest.skip("d2l is not installed")
    # read d2l's source rather than importing it (the import takes ~10 s)
    source = (Path(spec.origin).parent / "torch.py").read_text(encoding="utf-8")
    assert "DATA_URL = 'http://d2l-data.s3-accelerate.amazonaws.com/'" in source
    assert "d2l.DATA_URL+'fra-eng.zip'" in source
    assert f"'{fra_eng.FRA_ENG_SHA1}'" in source
    assert fra_eng.FRA_ENG_URL == "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"


def test_download_verifies_and_caches(served_zip, cache):
    assert load_fra_eng(cache_dir=cache) == PAIRS
    assert fra_eng.verify_file(cache / "fra-eng.zip")
    assert sorted(p.name for p in cache.iterdir()) == ["fra-eng.zip"]
    assert load_fra_eng(cache_dir=cache, max_pairs=2) == PAIRS[:2]
    assert served_zip.requests == 1  # the second call used the cache


def test_cache_dir_from_environment(served_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "from-env"))
    assert fra_eng_path() == tmp_path / "from-env" / "fra-eng.zip"
    assert load_fra_eng() == PAIRS
    assert fra_eng.verify_file(tmp_path / "from-env" / "fra-eng.zip")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_cached_file_is_fetched_again(served_zip, cache, damage):
    cache.mkdir()
    good = served_zip.zip_bytes
    (cache / "fra-eng.zip").write_bytes(good[: len(good) // 2] if damage == "truncated" else b"not a zip")
    assert load_fra_eng(cache_dir=cache) == PAIRS
    assert served_zip.requests == 1
    assert (cache / "fra-eng.zip").read_bytes() == good


def test_checksum_mismatch_is_an_error_and_leaves_nothing(served_zip, cache, monkeypatch):
    monkeypatch.setattr(fra_eng, "FRA_ENG_SHA1", "0" * 40)
    cache.mkdir()
    (cache / "fra-eng.zip").write_bytes(b"an old corrupt download")
    with pytest.raises(CorpusUnavailable, match="did not verify") as error:
        load_fra_eng(cache_dir=cache)
    assert served_zip.requests == 1
    assert list(cache.iterdir()) == []  # neither the old file nor pooch's temporary one
    assert str(cache / "fra-eng.zip") in str(error.value)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fra-eng.zip"  # nothing listens there any more


def test_offline_without_cache_says_where_to_get_and_put_the_file(cache, monkeypatch, no_proxy):
    url = _closed_port_url()
    monkeypatch.setattr(fra_eng, "FRA_ENG_URL", url)
    with pytest.raises(CorpusUnavailable) as error:
        load_fra_eng(cache_dir=cache)
    message = str(error.value)
    assert isinstance(error.value, RuntimeError)
    assert url in message
    assert str(cache / "fra-eng.zip") in message
    assert "path=" in message and "--data" in message
    assert not (cache / "fra-eng.zip").exists()


# ------------------------------------------------------------------- parsing


def test_two_and_three_columns_give_the_same_pairs():
    two, three = parse_pairs(LINES_2), parse_pairs(LINES_3)
    assert two.pairs == three.pairs == PAIRS
    assert two.malformed == three.malformed == []


def test_malformed_lines_are_reported_with_line_numbers():
    lines = ["Go.\tVa !", "no tab here", "\tempty English", "Hi.\t", "a\tb\tc\td", "", "Run!\tCours !", ""]
    result = parse_pairs(lines)
    assert result.pairs == [("Go.", "Va !"), ("Run!", "Cours !")]
    assert [number for number, _ in result.malformed] == [2, 3, 4, 5, 6]
    assert result.malformed[0] == (2, "no tab here")


def test_a_final_newline_is_not_a_malformed_line():
    assert parse_pairs("Go.\tVa !\r\nRun!\tCours !\r\n".split("\n")) == (
        [("Go.", "Va !"), ("Run!", "Cours !")], [])


def test_load_warns_about_malformed_lines_or_raises_when_strict(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\nbroken\nRun!\tCours !\nalso broken\n", encoding="utf-8")
    with pytest.warns(MalformedLinesWarning, match=r"2 malformed line\(s\).*line\(s\) 2, 4"):
        assert load_fra_eng(path) == [("Go.", "Va !"), ("Run!", "Cours !")]
    with pytest.raises(ValueError, match=r"2 malformed line\(s\)"):
        load_fra_eng(path, strict=True)


def test_non_utf8_file_names_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_bytes(b"Go.\tVa !\nCoffee.\tCaf" + b"\xe9.\n")
    with pytest.raises(ValueError, match=r"fra\.txt is not UTF-8 text: byte offset 20 \(line 2\)"):
        load_fra_eng(path)
    path.write_bytes(b"\xef\xbb\xbfGo.\tVa\xa0!\n")  # a byte-order mark counts in the offset
    with pytest.raises(ValueError, match=r"byte offset 9 \(line 1\) is 0xa0"):
        load_fra_eng(path)
    zipped = tmp_path / "latin1.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("fra-eng/fra.txt", b"Caf\xe9\tx\n")
    with pytest.raises(ValueError, match=r"latin1\.zip:fra-eng/fra\.txt is not UTF-8.*byte offset 3"):
        load_fra_eng(zipped)


def test_zip_txt_and_folder_load_the_same_pairs(tmp_path):
    text = "\n".join(LINES_3) + "\n"
    txt = tmp_path / "fra.txt"
    txt.write_text(text, encoding="utf-8")
    zipped = _write_zip(tmp_path / "fra-eng.zip", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no malformed-line warning either
        assert load_fra_eng(txt) == load_fra_eng(zipped) == load_fra_eng(tmp_path) == PAIRS
    assert read_corpus_text(zipped) == text


def test_a_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_fra_eng(tmp_path / "missing.txt")


def _zip_with_fra(path, text="Go.\tVa !\nHi.\tSalut !\n" * 50, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("fra.txt", text)
    return path


def _damage(path, find, replace):
    data = bytearray(path.read_bytes())
    at = data.index(find)
    data[at:at + len(replace)] = replace
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind, reason", [
    ("bad crc", "BadZipFile"),
    ("bad deflate", "error"),
    ("encrypted", "encrypted"),
    ("cut in half", "cut short"),
])
def test_corrupt_archives_are_named_as_such(tmp_path, kind, reason):
    path = tmp_path / "fra-eng.zip"
    if kind == "bad crc":
        _zip_with_fra(path, method=zipfile.ZIP_STORED)
        _damage(path, b"Salut", b"Salux")  # the stored bytes no longer match their CRC-32
    elif kind == "bad deflate":
        _zip_with_fra(path)
        data = bytearray(path.read_bytes())
        start = 30 + len("fra.txt")  # the compressed data follows the local header
        data[start:start + 8] = b"\xff" * 8
        path.write_bytes(bytes(data))
    elif kind == "encrypted":
        _zip_with_fra(path)
        data = bytearray(path.read_bytes())
        data[6] |= 1  # the local header's "encrypted" flag
        central = data.index(b"PK\x01\x02")
        data[central + 8] |= 1  # and the central directory's
        path.write_bytes(bytes(data))
    else:
        _zip_with_fra(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as caught:
        load_fra_eng(path)
    message = str(caught.value)
    assert "corrupt zip archive" in message and str(path) in message and reason in message
    assert "download fra-eng.zip again" in message
