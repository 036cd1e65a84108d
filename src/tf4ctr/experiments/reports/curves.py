"""Figures 2, 5 and 10: per-epoch curves recorded during training, drawn from the store.

``difficulty``: well / poorly / misclassified samples per epoch (Figures 2 and 10);
``grad_norms``: the gradient reaching z_s and z_c per batch of the first epoch (Figure 5).
"""

from __future__ import annotations

from pathlib import Path

from tf4ctr.experiments.reports.common import records_by_label
from tf4ctr.experiments.reports.table import results_table
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore


def difficulty_curves(experiment: Experiment, store: ResultStore) -> dict[str, list[dict]] | None:
    """Each label's per-epoch history (its first seed), once every label has difficulty counts."""
    rows = records_by_label(experiment, store)
    data = {label: recs[0]["history"] for label, recs in rows.items() if recs}
    ready = bool(data) and all(any("difficulty" in h for h in hist) for hist in data.values())
    return data if ready else None


def grad_norm_curves(experiment: Experiment, store: ResultStore) -> dict[str, dict]:
    rows = records_by_label(experiment, store)
    return {label: recs[0]["logit_grad_norms"] for label, recs in rows.items()
            if recs and "logit_grad_norms" in recs[0]}  # fmt: skip


def render(experiment: Experiment, store: ResultStore, figure: Path | None) -> list[str]:
    from tf4ctr.experiments import figures

    parts = [results_table(experiment, store)]
    if experiment.report.kind == "difficulty":
        data = difficulty_curves(experiment, store)
        draw = (lambda p: figures.difficulty_figure(p, data)) if data else None
    else:
        norms = grad_norm_curves(experiment, store)
        draw = (lambda p: figures.grad_norm_figure(p, norms)) if norms else None
    if draw is not None and figure is not None:
        draw(figure)
        parts.append(f"![{experiment.name}]({figure.name})")
    return parts
