"""``attn data``: where the fra-eng corpus is, whether it verifies, and its statistics."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from utils.command_line import fail, int_at_least, path_text
from utils.data import fra_eng
from utils.data.batches import TranslationData
from utils.data.splits import generated_splits, split_by_source

_BAR_WIDTH = 40
_SHOWN_MALFORMED = 5


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", type=path_text,
                        help="a local fra.txt or fra-eng.zip to describe instead of the cached download")
    source.add_argument("--cache-dir", metavar="DIR", type=path_text,
                        help=f"the cache folder (default: ${fra_eng.CACHE_ENV_VAR}, else a user cache folder)")
    source.add_argument("--generated", metavar="N", type=int_at_least(1),
                        help="describe N pairs of the generated offline corpus instead")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the generated corpus and the splits")
    parser.add_argument("--min-freq", type=int_at_least(1), default=2,
                        help="how often a token must occur in train to get an id (default 2)")
    parser.add_argument("--no-download", action="store_true",
                        help="only look at the cache; do not download a missing or corrupt file")


def format_histogram(counts: dict[int, int], *, max_bins: int = 16) -> list[str]:
    """Text bars for a {length: count} mapping, lengths grouped into at most ``max_bins`` bins."""
    if not counts:
        return ["    (empty)"]
    low, high = min(counts), max(counts)
    bin_size = max(1, math.ceil((high - low + 1) / max_bins))
    bins: dict[int, int] = {}
    for length, count in counts.items():
        start = low + (length - low) // bin_size * bin_size
        bins[start] = bins.get(start, 0) + count
    largest = max(bins.values())
    lines = []
    for start in range(low, high + 1, bin_size):
        count = bins.get(start, 0)
        label = f"{start}" if bin_size == 1 else f"{start}-{start + bin_size - 1}"
        bar = "#" * (round(_BAR_WIDTH * count / largest) if count else 0)
        lines.append(f"    {label:>7} | {bar:<{_BAR_WIDTH}} {count:,}")
    return lines


def _print_statistics(data: TranslationData, seed: int) -> None:
    stats = data.stats()
    sizes = stats["pairs"]
    unique = stats["unique_sources"]
    print(f"splits (by unique English sentence, seed {seed}): "
          + ", ".join(f"{name} {sizes[name]:,} pairs / {unique[name]:,} sentences" for name in sizes))
    print(f"vocabulary (from train, min_freq {stats['min_freq']}): "
          f"English {stats['src_vocab_size']:,} tokens, French {stats['tgt_vocab_size']:,} tokens")
    print("unknown-token rate in valid/test: "
          f"English {stats['src_unk_rate']['valid']:.2%}/{stats['src_unk_rate']['test']:.2%}, "
          f"French {stats['tgt_unk_rate']['valid']:.2%}/{stats['tgt_unk_rate']['test']:.2%}")
    for side, key in (("English", "src_lengths"), ("French", "tgt_lengths")):
        print(f"{side} sentence length (tokens, all splits):")
        print("\n".join(format_histogram(stats[key])))


def _describe_file(label: str, path: Path) -> bool:
    """Print where the file is and whether it matches the pinned checksum; whether it is there."""
    print(f"{label}: {path}")
    if path.is_dir():
        print("  present: a folder (looking for fra.txt or fra-eng.zip in it)")
        return True
    if not path.is_file():
        print("  present: no")
        return False
    sha1 = fra_eng.file_sha1(path)
    verdict = ("matches the pinned checksum" if sha1 == fra_eng.FRA_ENG_SHA1
               else f"differs from the pinned {fra_eng.FRA_ENG_SHA1}")
    print(f"  present: yes, {path.stat().st_size:,} bytes")
    print(f"  SHA-1:   {sha1} ({verdict})")
    return True


def run(args: argparse.Namespace) -> int:
    if args.generated is not None:
        print(f"generated corpus: {args.generated:,} pairs from the project's grammar, seed {args.seed} "
              "(no download needed)")
        started = time.perf_counter()
        splits = generated_splits(args.generated, seed=args.seed)
        print(f"  generated and split in {time.perf_counter() - started:.2f} s")
        _print_statistics(TranslationData(splits, min_freq=args.min_freq), args.seed)
        return 0

    if args.data is not None:
        path = Path(args.data).expanduser()
        if not _describe_file("file", path):
            return fail("data", f"--data {args.data}: no such file")
    else:
        if args.cache_dir is not None and Path(args.cache_dir).expanduser().is_file():
            return fail("data", f"--cache-dir {args.cache_dir} is a file, not a folder: give the cache folder", 2)
        path = fra_eng.fra_eng_path(args.cache_dir)
        present = _describe_file("cache", path)
        if not (present and fra_eng.verify_file(path)):
            if args.no_download:
                reason = ("the cached file does not verify." if present else "it is not in the cache.")
                print(fra_eng.unavailable_message(fra_eng.FRA_ENG_URL, fra_eng.FRA_ENG_SHA1, path, reason),
                      file=sys.stderr)
                return 1
            print(f"  downloading from {fra_eng.FRA_ENG_URL} …")
            try:
                path = fra_eng.fetch_fra_eng(args.cache_dir, progress=True)
            except fra_eng.CorpusUnavailable as error:
                return fail("data", str(error))
            print("  downloaded and verified")

    started = time.perf_counter()
    try:
        result = fra_eng.parse_pairs(fra_eng.read_corpus_text(path).split("\n"))
    except (ValueError, OSError) as error:
        return fail("data", str(error))
    print(f"  read in {time.perf_counter() - started:.2f} s: {len(result.pairs):,} pairs, "
          f"{len(result.malformed):,} malformed lines")
    for line_number, line in result.malformed[:_SHOWN_MALFORMED]:
        print(f"    line {line_number}: {line[:80]!r}")
    if len(result.malformed) > _SHOWN_MALFORMED:
        print(f"    … and {len(result.malformed) - _SHOWN_MALFORMED:,} more")
    if not result.pairs:
        return fail("data", f"{path} holds no English<TAB>French pairs")
    splits = split_by_source(result.pairs, seed=args.seed)
    _print_statistics(TranslationData(splits, min_freq=args.min_freq), args.seed)
    return 0
