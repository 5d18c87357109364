"""``attn translate``: English in, French out, from a trained checkpoint.

    attn translate "I am cold." --pretrained luong          # shipped, trained on the real corpus
    attn translate "I am cold." --checkpoint runs/cpu-luong
    attn translate "She sees the cat." "We are late." --checkpoint runs/cpu-luong --beam 4
    attn translate "I am cold." --checkpoint runs/cpu-luong --alignment
    attn translate "I am cold." --checkpoint runs/cpu-transformer --alignment   # and per head
    attn translate "She eats the green apple." --checkpoint runs/cpu-luong --plot alignments.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from utils.runtime import choose_device
from utils.seq2seq import head_alignments, translate
from utils.training.commands import (
    add_device_options,
    add_model_options,
    apply_threads,
    fail,
    int_at_least,
    load_model,
    path_text,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("sentences", nargs="+", metavar="SENTENCE", help="English sentence(s)")
    add_model_options(parser)
    parser.add_argument("--beam", type=int_at_least(1), default=1, metavar="K", help="beam size (1: greedy, default)")
    parser.add_argument("--alignment", action="store_true",
                        help="also print the attention weights: target tokens x source tokens")
    parser.add_argument("--plot", metavar="PNG", type=path_text,
                        help="also save the alignments as heatmaps, one per sentence (needs matplotlib)")
    parser.add_argument("--max-len", type=int_at_least(1), metavar="TOKENS", help="longest translation")
    add_device_options(parser)


def alignment_table(source_tokens: list[str], target_tokens: list[str], weights) -> str:
    """A text table of ``weights (len(target_tokens), len(source_tokens))``, one row per target token.

    Every row sums to 1 (one attention distribution per output token); the
    largest weight of each row is marked with ``*``.
    """
    rows = weights.tolist()
    if len(rows) != len(target_tokens) or any(len(row) != len(source_tokens) for row in rows):
        raise ValueError(f"weights must have shape ({len(target_tokens)}, {len(source_tokens)}); "
                         f"got {tuple(weights.shape)}")
    width = max([5, *map(len, source_tokens)]) + 1
    label = max([6, *map(len, target_tokens)])
    lines = [" " * label + " " + "".join(f"{token:>{width}}" for token in source_tokens)]
    for token, row in zip(target_tokens, rows, strict=True):
        best = max(range(len(row)), key=row.__getitem__) if row else -1
        cells = "".join(f"{f'{value:.2f}' + ('*' if i == best else ' '):>{width}}"
                        for i, value in enumerate(row))
        lines.append(f"{token:<{label}} {cells}")
    return "\n".join(lines)


def save_alignment_plot(path: str, results, title_prefix: str) -> None:
    """One labelled heatmap per translation, side by side, written to ``path``."""
    # matplotlib only here: the rest of the command runs on a bare PyTorch machine
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.plot import heatmap

    plotted = [result for result in results if result.weights is not None]
    if not plotted:
        raise ValueError("the plain decoder has no attention weights to plot")
    fig, axes = plt.subplots(1, len(plotted), figsize=(5 * len(plotted), 4), squeeze=False)
    for ax, result in zip(axes[0], plotted, strict=True):
        heatmap(result.weights, row_labels=result.tokens, col_labels=result.source_tokens, ax=ax,
                title=f"{title_prefix}{result.text}", xlabel="English (source)", ylabel="French (output)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def check_plot_path(path: str) -> None:
    """Before translating: ``--plot`` must name a file (with a suffix) in a folder that exists."""
    where = Path(path)
    if where.is_dir():
        raise ValueError(f"--plot {path} is a folder; give a file name such as {where / 'alignments.png'}")
    if not where.suffix:
        raise ValueError(f"--plot {path} has no suffix; give a file name such as {path}.png")
    if not where.parent.is_dir():
        raise ValueError(f"--plot {path}: the folder {where.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    empty = [i for i, sentence in enumerate(args.sentences, 1) if not sentence.strip()]
    if empty:
        return fail("translate", f"SENTENCE {empty[0]} is empty; give English sentences to translate", 2)
    try:
        if args.plot:
            check_plot_path(args.plot)
        apply_threads(args.threads)
        device = choose_device(args.device)
        model, src_vocab, tgt_vocab, _ = load_model(args, device)
    except (ValueError, FileNotFoundError) as error:
        return fail("translate", str(error), 1)
    results = translate(model, args.sentences, src_vocab, tgt_vocab, beam_size=args.beam,
                        max_len=args.max_len, device=device)
    for sentence, result in zip(args.sentences, results, strict=True):
        if not args.alignment:
            print(result.text)
            continue
        print(f"{sentence}  ->  {result.text}")
        if result.weights is None:
            print("(the plain decoder has no attention weights)")
        else:
            target = result.tokens if len(result.tokens) == result.weights.shape[0] else [*result.tokens, "<eos>"]
            heads = head_alignments(model, result, src_vocab, tgt_vocab)  # transformer: per head
            if heads is not None:
                print(f"(cross-attention of the last decoder layer, averaged over its {heads.shape[0]} heads)")
            print(alignment_table(result.source_tokens, target, result.weights))
            for head, weights in enumerate([] if heads is None else heads, start=1):
                print(f"head {head} of {heads.shape[0]}:")
                print(alignment_table(result.source_tokens, target, weights))
        unknown = [token for token in result.source_tokens[:-1] if token not in src_vocab]
        if unknown:
            print(f"(unknown to the model, read as <unk>: {', '.join(unknown)})")
        print()
    if args.plot:
        try:
            save_alignment_plot(args.plot, results, f"{model.config.decoder}: ")
        except (ValueError, ImportError) as error:
            return fail("translate", f"--plot: {error}", 1)
        print(f"alignments saved to {args.plot}")
    return 0
