"""Table VI: first-epoch training time and validation inference time, relative to a baseline."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from tf4ctr.experiments.reports.common import markdown_table, records_by_label, references
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore


@dataclass(frozen=True)
class TimingRow:
    label: str
    train_s: float | None  # median first-epoch training seconds over seeds
    infer_s: float | None  # median validation inference seconds
    train_ratio: float | None  # relative to the baseline's
    infer_ratio: float | None
    paper_train_ratio: float | None = None
    paper_infer_ratio: float | None = None
    has_reference: bool = False


def _median(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else None


def compute(experiment: Experiment, store: ResultStore) -> list[TimingRow] | None:
    """None until the baseline has a result."""
    baseline = experiment.report.baseline
    rows = records_by_label(experiment, store)
    base = rows.get(baseline) or []
    if not base:
        return None
    b_train, b_infer = _median(base, "first_epoch_seconds"), _median(base, "valid_seconds")
    refs = references(experiment)
    out = []
    for label, recs in rows.items():
        train, infer = _median(recs, "first_epoch_seconds"), _median(recs, "valid_seconds")
        out.append(
            TimingRow(
                label,
                train,
                infer if train is not None else None,
                train / b_train if train is not None and b_train else None,
                infer / b_infer if train is not None and infer is not None and b_infer else None,
                refs[label].get("train_ratio"),
                refs[label].get("inference_ratio"),
                bool(refs[label]),
            )
        )
    return out


def render(experiment: Experiment, store: ResultStore) -> str:
    baseline = experiment.report.baseline
    rows = compute(experiment, store)
    if rows is None:
        return f"(no result for the baseline '{baseline}' yet)"
    has_ref = any(r.has_reference for r in rows)
    head = ["model", "first-epoch training (s)", f"× {baseline}", "validation inference (s)"]
    head += [f"× {baseline}"] + (["paper × (training)", "paper × (inference)"] if has_ref else [])

    def two(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    out = []
    for r in rows:
        cells = [r.label, "–" if r.train_s is None else f"{r.train_s:.1f}", two(r.train_ratio)]
        cells += [two(r.infer_s), two(r.infer_ratio)]
        if has_ref:
            cells += [two(r.paper_train_ratio), two(r.paper_infer_ratio)]
        out.append(cells)
    return markdown_table(head, out)
