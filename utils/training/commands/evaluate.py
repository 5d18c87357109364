"""``attn evaluate``: sacreBLEU of a translator on its held-out split, or on any file of pairs.

    attn evaluate --pretrained luong                          # the shipped model, its test split
    attn evaluate --pretrained plain --pairs my_pairs.tsv     # any English<TAB>French file
    attn evaluate --checkpoint runs/cpu-luong
    attn evaluate --checkpoint runs/gpu-luong --beam 4 --max-sentences 2000

Two figures: single-reference sacreBLEU (each pair scored against its own French sentence)
and multi-reference sacreBLEU (each distinct English sentence once, against all its
translations in the set), each with sacreBLEU's signature. Text is lower-cased and
normalised on both sides before scoring (published, cased figures are not comparable).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from utils.data import CorpusUnavailable, Splits, TranslationData
from utils.pretrained import pretrained_test_pairs, read_pairs_tsv
from utils.runtime import choose_device
from utils.training.commands import (
    add_device_options,
    add_model_options,
    apply_threads,
    fail,
    int_at_least,
    load_model,
    path_text,
)
from utils.training.config import DataSpec, build_data
from utils.training.evaluation import bleu_on_split


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    add_model_options(parser)
    parser.add_argument("--pairs", metavar="FILE", type=path_text,
                        help="score on this English<TAB>French file instead of the held-out split "
                             "(every translation of a repeated English sentence is a reference)")
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test",
                        help="with --checkpoint: the split of its training data (default: test)")
    parser.add_argument("--beam", type=int_at_least(1), default=1, metavar="K", help="beam size (1: greedy, default)")
    parser.add_argument("--max-sentences", type=int_at_least(1), metavar="N", help="the first N pairs of the split")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128)
    parser.add_argument("--examples", type=int_at_least(0), default=3, metavar="N", help="translations to show")
    parser.add_argument("--data", metavar="PATH", type=path_text,
                        help="where the training corpus file is now (when it moved since training)")
    add_device_options(parser)


def _evaluation_data(args, checkpoint: dict, src_vocab, tgt_vocab):
    """``(TranslationData, description)``: the pairs to score, with the model's vocabularies."""
    def test_only(pairs):
        return TranslationData(Splits([], [], pairs), src_vocab=src_vocab, tgt_vocab=tgt_vocab)

    if args.pairs is not None:
        if not Path(args.pairs).is_file():
            kind = "a folder, not a file" if Path(args.pairs).is_dir() else "no such file"
            raise ValueError(f"--pairs {args.pairs}: {kind}")
        pairs = read_pairs_tsv(args.pairs)
        if not pairs:
            raise ValueError(f"--pairs {args.pairs} holds no English<TAB>French pairs")
        return test_only(pairs), Path(args.pairs).name
    if args.pretrained is not None:
        return test_only(pretrained_test_pairs()), "the shipped held-out test split of fra-eng"
    if checkpoint.get("data_spec") is None:
        raise ValueError("the checkpoint has no data spec (it was not written by `attn train`), "
                         "so its test split cannot be rebuilt")
    spec_values = dict(checkpoint["data_spec"])
    if args.data is not None:
        spec_values.update(source="file", path=args.data)
    spec = DataSpec.from_dict(spec_values)
    if spec.source == "file" and not Path(spec.path).exists():
        raise ValueError(f"the training corpus {spec.path} is gone; point to it with --data PATH")
    return build_data(spec, src_vocab=src_vocab, tgt_vocab=tgt_vocab), spec.describe()


def run(args: argparse.Namespace) -> int:
    if args.beam < 1:
        return fail("evaluate", f"--beam must be >= 1; got {args.beam}", 2)
    if args.max_sentences is not None and args.max_sentences < 1:
        return fail("evaluate", f"--max-sentences must be >= 1; got {args.max_sentences}", 2)
    if (args.pairs is not None or args.pretrained is not None) and args.split != "test":
        return fail("evaluate", "--split applies to a --checkpoint's own data, not to --pairs/--pretrained", 2)
    if (args.pairs is not None or args.pretrained is not None) and args.data is not None:
        return fail("evaluate", "--data locates a --checkpoint's own training corpus; it does not apply "
                                "with --pairs or --pretrained", 2)
    try:
        apply_threads(args.threads)
        device = choose_device(args.device)
        model, src_vocab, tgt_vocab, checkpoint = load_model(args, device)
        data, description = _evaluation_data(args, checkpoint, src_vocab, tgt_vocab)
    except (ValueError, FileNotFoundError, CorpusUnavailable) as error:
        return fail("evaluate", str(error), 1)
    split = "test" if args.pairs is not None or args.pretrained is not None else args.split
    if not data.pairs[split]:
        return fail("evaluate", f"the {split} split is empty", 1)
    started = time.perf_counter()
    result = bleu_on_split(model, data, split, max_sentences=args.max_sentences, beam_size=args.beam,
                           batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    decoding = "greedy" if args.beam == 1 else f"beam {args.beam}"
    print(f"sacreBLEU {result.bleu:.1f} on {split} ({result.num_sentences:,} of "
          f"{len(data.pairs[split]):,} pairs, {decoding} decoding, {seconds:.1f} s); "
          f"data: {description}; checkpoint at step {checkpoint['step']}")
    print(f"  single reference per pair; signature {result.signature}")
    print(f"multi-reference sacreBLEU {result.multi_bleu:.1f} ({result.num_distinct_sources:,} distinct "
          f"English sentences, each against all its translations); signature {result.multi_signature}")
    for source, hypothesis, reference in list(zip(result.sources, result.hypotheses, result.references,
                                                  strict=True))[: max(args.examples, 0)]:
        print(f"  {source}\n    model:     {hypothesis}\n    reference: {reference}")
    return 0
