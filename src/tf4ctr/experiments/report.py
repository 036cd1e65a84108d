"""Markdown tables from an experiment's stored results."""

from __future__ import annotations

import statistics
from typing import Any

from scipy import stats

from tf4ctr.experiments.runner import Experiment, ResultStore


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def results_table(experiment: Experiment, store: ResultStore) -> str:
    """One row per cell label (mean ± std over seeds), in the experiment's order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    references: dict[str, dict[str, Any] | None] = {}
    for cell in experiment.cells:
        rows.setdefault(cell.label, [])
        references[cell.label] = cell.reference
        if cell.key in store:
            rows[cell.label].append(store.records[cell.key])
    has_gauc = any("gauc" in r["test"] for recs in rows.values() for r in recs)
    has_ref = any(references.values())
    head = ["model", "seeds", "test AUC"] + (["test gAUC"] if has_gauc else [])
    head += ["test logloss", "best epoch", "s/epoch", "params"] + (["paper AUC"] if has_ref else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, recs in rows.items():
        cells = [label, str(len(recs))]
        cells.append(_mean_std([r["test"]["auc"] for r in recs]))
        if has_gauc:
            cells.append(_mean_std([r["test"]["gauc"] for r in recs if "gauc" in r["test"]]))
        cells.append(_mean_std([r["test"]["logloss"] for r in recs]))
        cells.append(", ".join(str(r["best_epoch"]) for r in recs) or "–")
        cells.append(_mean_std([r["seconds_per_epoch"] for r in recs], 1))
        cells.append(f"{recs[0]['parameters']:,}" if recs else "–")
        if has_ref:
            ref = references[label] or {}
            cells.append(f"{ref['test_auc']:.4f}" if "test_auc" in ref else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significance(
    experiment: Experiment, store: ResultStore, first: str, second: str, metric: str = "auc"
) -> dict[str, Any]:
    """Two-tailed t-test on the test ``metric`` of two cell labels over their seeds.

    Welch's form (no equal-variance assumption); the paper reports two-tailed
    t-test p-values for TF4CTR against the best baseline over five runs.
    """

    def values(label: str) -> list[float]:
        return [
            store.records[c.key]["test"][metric]
            for c in experiment.cells
            if c.label == label and c.key in store
        ]

    a, b = values(first), values(second)
    result: dict[str, Any] = {"first": first, "second": second, "n": (len(a), len(b))}
    if len(a) > 1 and len(b) > 1:
        test = stats.ttest_ind(a, b, equal_var=False)
        result.update(
            statistic=float(test.statistic),
            pvalue=float(test.pvalue),
            mean_difference=statistics.mean(a) - statistics.mean(b),
        )
    return result
