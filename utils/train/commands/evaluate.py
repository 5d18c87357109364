"""``attn evaluate``: sacreBLEU of a checkpoint on the held-out split it was trained with.

    attn evaluate --checkpoint runs/cpu-luong
    attn evaluate --checkpoint runs/gpu-luong --beam 4 --max-sentences 2000
"""

from __future__ import annotations

import argparse
import time

from utils.train.commands import add_device_options, apply_threads, fail


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a checkpoint.pt, or the --out folder of `attn train`")
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test")
    parser.add_argument("--beam", type=int, default=1, metavar="K", help="beam size (1: greedy, default)")
    parser.add_argument("--max-sentences", type=int, metavar="N", help="the first N pairs of the split")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--examples", type=int, default=3, metavar="N", help="translations to show")
    parser.add_argument("--data", metavar="PATH",
                        help="where the training corpus file is now (when it moved since training)")
    add_device_options(parser)


def run(args: argparse.Namespace) -> int:
    from utils.data import CorpusUnavailable
    from utils.runtime import choose_device
    from utils.train.checkpoint import load_checkpoint
    from utils.train.config import DataSpec, build_data
    from utils.train.evaluation import bleu_on_split

    if args.beam < 1:
        return fail("evaluate", f"--beam must be >= 1; got {args.beam}", 2)
    if args.max_sentences is not None and args.max_sentences < 1:
        return fail("evaluate", f"--max-sentences must be >= 1; got {args.max_sentences}", 2)
    try:
        apply_threads(args.threads)
        device = choose_device(args.device)
        model, src_vocab, tgt_vocab, checkpoint = load_checkpoint(args.checkpoint, device=device)
        if checkpoint.get("data_spec") is None:
            raise ValueError("the checkpoint has no data spec (it was not written by `attn train`), "
                             "so its test split cannot be rebuilt")
        spec_values = dict(checkpoint["data_spec"])
        if args.data is not None:
            spec_values.update(source="file", path=args.data)
        spec = DataSpec.from_dict(spec_values)
        if spec.source == "file" and not __import__("pathlib").Path(spec.path).exists():
            raise ValueError(f"the training corpus {spec.path} is gone; point to it with --data PATH")
        data = build_data(spec, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    except (ValueError, FileNotFoundError, CorpusUnavailable) as error:
        return fail("evaluate", str(error), 1)
    if not data.pairs[args.split]:
        return fail("evaluate", f"the {args.split} split is empty", 1)
    started = time.perf_counter()
    result = bleu_on_split(model, data, args.split, max_sentences=args.max_sentences, beam_size=args.beam,
                           batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    decoding = "greedy" if args.beam == 1 else f"beam {args.beam}"
    print(f"sacreBLEU {result.bleu:.1f} on {args.split} ({result.num_sentences:,} of "
          f"{len(data.pairs[args.split]):,} pairs, {decoding} decoding, {seconds:.1f} s); "
          f"data: {spec.describe()}; checkpoint at step {checkpoint['step']}")
    for source, hypothesis, reference in list(zip(result.sources, result.hypotheses, result.references,
                                                  strict=True))[: max(args.examples, 0)]:
        print(f"  {source}\n    model:     {hypothesis}\n    reference: {reference}")
    return 0
