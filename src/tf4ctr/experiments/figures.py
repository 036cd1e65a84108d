"""The paper's figures as PNG files (matplotlib), drawn from stored results.

* Figure 4 — the TF Loss terms against p_t for several c and γ (no training).
* Figures 2 and 10 — well / poorly / misclassified counts per epoch.
* Figure 5 — gradient norms reaching z_s and z_c per batch in the first epoch.
* Figures 6-9 — test AUC and gAUC against a swept hyperparameter.

matplotlib is an optional dependency (``pip install matplotlib``, or the
``dev`` extra); asking for a figure without it is a clear error. Every figure
is written to a temporary file and renamed, so a failed plot leaves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tf4ctr.errors import UserError
from tf4ctr.fileio import make_dir, write_atomic
from tf4ctr.framework.losses import twin_focus_terms
from tf4ctr.train.analysis import DIFFICULTY_CLASSES

__all__ = [
    "difficulty_figure",
    "grad_norm_figure",
    "sweep_figure",
    "tf_loss_figure",
]

_CLASS_COLOURS = {
    "well": "#2ca02c",
    "poor": "#1f77b4",
    "mis": "#d62728",
}  # the paper's green/blue/red
_CLASS_NAMES = {"well": "well-classified", "poor": "poorly classified", "mis": "misclassified"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("figures need matplotlib: pip install matplotlib") from None
    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    make_dir(path.parent, "the figure's folder")
    try:
        write_atomic(
            path, lambda tmp: fig.savefig(tmp, dpi=130, bbox_inches="tight"), suffix=".png"
        )
    finally:
        _pyplot().close(fig)
    return path


def tf_loss_figure(
    path: Path,
    *,
    cs: Sequence[float] = (0.3, 0.5, 0.7),
    gammas: Sequence[float] = (1.0, 2.0),
) -> Path:
    """Figure 4: L_simple and L_complex (Eq. 7, per sample) against p_t, with log loss."""
    plt = _pyplot()
    p_t = torch.linspace(0.01, 0.99, 197)
    logit = torch.log(p_t / (1 - p_t))
    label = torch.ones_like(p_t)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, which in zip(axes, ("simple", "complex"), strict=True):
        ax.plot(p_t, -torch.log(p_t), color="black", lw=1.2, ls="--", label="log loss")
        for c in cs:
            for gamma in gammas:
                simple, complex_ = twin_focus_terms(logit, logit, label, c=c, gamma=gamma)
                ax.plot(p_t, simple if which == "simple" else complex_, label=f"c={c}, γ={gamma:g}")
        for x in (0.3, 0.6):
            ax.axvline(x, color="grey", lw=0.6, ls=":")
        ax.set_title(f"$L_{{{which}}}$")
        ax.set_xlabel("$p_t$ (probability of the true class)")
        ax.set_ylim(0, 5)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("TF Loss terms (Eq. 7); dotted lines: the 0.3 / 0.6 difficulty thresholds", y=1.02)
    return _save(fig, path)


def difficulty_figure(
    path: Path,
    histories: dict[str, list[dict[str, Any]]],
    *,
    splits: Sequence[str] = ("train", "valid", "test"),
) -> Path:
    """Figures 2 / 10: stacked class counts per epoch, one row per split, positives and
    negatives side by side, one bar group per model."""
    plt = _pyplot()
    models = list(histories)
    fig, axes = plt.subplots(len(splits), 2, figsize=(11, 2.8 * len(splits)), squeeze=False)
    width = 0.8 / max(len(models), 1)
    hatches = ["", "//", "..", "xx"]
    for row, split in enumerate(splits):
        for col, side in enumerate(("positive", "negative")):
            ax = axes[row][col]
            for m, model in enumerate(models):
                epochs = [h for h in histories[model] if "difficulty" in h]
                x = (
                    np.array([h["epoch"] for h in epochs], dtype=float)
                    + (m - (len(models) - 1) / 2) * width
                )
                bottom = np.zeros(len(epochs))
                for cls in DIFFICULTY_CLASSES:
                    counts = np.array(
                        [h["difficulty"][split][side][cls] for h in epochs], dtype=float
                    )
                    ax.bar(
                        x,
                        counts,
                        width,
                        bottom=bottom,
                        color=_CLASS_COLOURS[cls],
                        hatch=hatches[m % len(hatches)],
                        edgecolor="white",
                        label=f"{model}: {_CLASS_NAMES[cls]}" if row == 0 and col == 0 else None,
                    )
                    bottom += counts
            ax.set_title(f"{split}, {side} samples", fontsize=9)
            ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7, ncol=max(1, len(models)))
    fig.suptitle("Well-classified (p_t ≥ 0.6), poorly classified, misclassified (p_t < 0.3)")
    fig.tight_layout()
    return _save(fig, path)


def grad_norm_figure(path: Path, runs: dict[str, dict[str, list[float]]]) -> Path:
    """Figure 5: per-batch norm of the gradient reaching z_s and z_c in the first epoch."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False, sharey=True)
    for ax, (label, norms) in zip(axes[0], runs.items(), strict=True):
        for name, colour in (("z_c", "#d62728"), ("z_s", "#1f77b4")):
            ax.plot(np.arange(1, len(norms[name]) + 1), norms[name], color=colour, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("batch (first epoch)")
        ax.legend()
    axes[0][0].set_ylabel("RMS of per-sample ∂L/∂z")
    fig.tight_layout()
    return _save(fig, path)


def sweep_figure(
    path: Path,
    xs: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    x_label: str,
    tick_labels: Sequence[str] | None = None,
    paper_best: float | None = None,
    runs: dict[str, Sequence[Sequence[float]]] | None = None,
) -> Path:
    """Figures 6-9: test metrics against a swept hyperparameter; ``paper_best`` (an x
    position) is marked with a dashed line, the paper's optimum on the same dataset.
    ``runs`` (per series, per point, each seed's value) adds the single runs as dots, so
    the seed noise is visible beside the mean line."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.4), squeeze=False)
    for ax, (name, ys) in zip(axes[0], series.items(), strict=True):
        ax.plot(xs, ys, marker="o", label="ours" if not runs else "ours (mean)")
        if runs and name in runs:
            px = [x for x, values in zip(xs, runs[name], strict=True) for _ in values]
            py = [v for values in runs[name] for v in values]
            ax.scatter(px, py, s=12, color="grey", alpha=0.7, label="single seeds", zorder=3)
            ax.legend(fontsize=8)
        if paper_best is not None:
            ax.axvline(paper_best, color="grey", linestyle="--", label="paper's best")
            ax.legend(fontsize=8)
        if tick_labels is not None:
            ax.set_xticks(list(xs), list(tick_labels), rotation=30, fontsize=8)
        ax.set_xlabel(x_label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
