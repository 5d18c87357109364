"""The translation data pipeline: text -> tokens -> ids -> padded, length-bucketed batches.

- ``normalize``, ``tokenize``: d2l-compatible sentence preprocessing (``text``)
- ``Vocab``: tokens <-> ids with ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` at 0-3 (``vocab``)
- ``load_fra_eng``, ``parse_pairs``, ``fetch_fra_eng``: the real Tatoeba corpus (``fra_eng``)
- ``generate_corpus``: the offline English -> French corpus from the project's grammar (``grammar``)
- ``split_by_source``, ``generated_splits``: splits by unique English sentence (``splits``)
- ``TranslationData``, ``Batch``: ids per split and their batches (``batches``)

Standard library, torch and numpy only (pooch is imported when downloading).
"""

from utils.data.batches import Batch, TranslationData
from utils.data.fra_eng import (
    FRA_ENG_SHA1,
    FRA_ENG_URL,
    CorpusUnavailable,
    MalformedLinesWarning,
    ParseResult,
    default_cache_dir,
    fetch_fra_eng,
    file_sha1,
    fra_eng_path,
    load_fra_eng,
    parse_pairs,
    read_corpus_text,
    verify_file,
)
from utils.data.grammar import generate_corpus
from utils.data.splits import Splits, generated_splits, split_by_source
from utils.data.text import normalize, tokenize
from utils.data.vocab import Vocab

__all__ = [
    "FRA_ENG_SHA1",
    "FRA_ENG_URL",
    "Batch",
    "CorpusUnavailable",
    "MalformedLinesWarning",
    "ParseResult",
    "Splits",
    "TranslationData",
    "Vocab",
    "default_cache_dir",
    "fetch_fra_eng",
    "file_sha1",
    "fra_eng_path",
    "generate_corpus",
    "generated_splits",
    "load_fra_eng",
    "normalize",
    "parse_pairs",
    "read_corpus_text",
    "split_by_source",
    "tokenize",
    "verify_file",
]
