"""Plotting helpers for the notebooks: PNG output, labelled heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch


def use_png() -> None:
    """PNG inline figures and the course's defaults (d2l's helpers switch to SVG; call after them)."""
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # outside Jupyter there is nothing to switch
        pass
    else:
        set_matplotlib_formats("png")
    plt.rcParams.update({"figure.figsize": (6.0, 3.5), "figure.dpi": 100, "axes.grid": False})


def heatmap(weights: torch.Tensor, *, row_labels: Sequence[str] | None = None,
            col_labels: Sequence[str] | None = None, title: str, xlabel: str = "keys",
            ylabel: str = "queries", ax=None, cmap: str = "Reds", annotate: bool = False):
    """Draw a ``(rows, cols)`` matrix of attention weights with token labels; return the axes."""
    matrix = torch.as_tensor(weights).detach().float().cpu()
    if matrix.dim() != 2:
        raise ValueError(f"weights must be a 2-D (rows, cols) matrix; got shape {tuple(matrix.shape)}")
    rows, cols = matrix.shape
    for name, labels, size in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{name} has {len(labels)} labels for {size} {name.split('_')[0]}s")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(3.0, 0.5 * cols + 1.5), max(2.0, 0.45 * rows + 1.0)))
    image = ax.imshow(matrix.numpy(), cmap=cmap, vmin=0.0, vmax=max(1e-9, float(matrix.max())),
                      aspect="auto")
    ax.set_xticks(range(cols), labels=list(col_labels) if col_labels is not None else range(cols),
                  rotation=45 if col_labels is not None else 0, ha="right" if col_labels is not None else "center")
    ax.set_yticks(range(rows), labels=list(row_labels) if row_labels is not None else range(rows))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if annotate:
        for row in range(rows):
            for col in range(cols):
                value = float(matrix[row, col])
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 * float(matrix.max()) else "black")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def training_curves(runs: dict, path=None, *, title: str = "Training on the real fra-eng corpus"):
    """Loss and validation BLEU against steps for several runs' ``metrics.json`` dicts, side by side.

    ``runs``: name -> the dict ``utils.training.train`` returns (and writes to ``metrics.json``):
    its ``losses`` (``step``, ``loss``) and ``bleu`` (``step``, ``bleu``) entries are plotted.
    Saved to ``path`` when given; returns the figure.
    """
    fig, (loss_ax, bleu_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, metrics in runs.items():
        loss_ax.plot([e["step"] for e in metrics["losses"]], [e["loss"] for e in metrics["losses"]], label=name)
        bleu_ax.plot([e["step"] for e in metrics["bleu"]], [e["bleu"] for e in metrics["bleu"]], "o-", label=name)
    loss_ax.set(title=f"{title}: training loss", xlabel="step", ylabel="masked cross-entropy per token")
    bleu_ax.set(title="validation sacreBLEU (greedy)", xlabel="step", ylabel="sacreBLEU")
    for ax in (loss_ax, bleu_ax):
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig
