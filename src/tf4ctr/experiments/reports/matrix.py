"""Tables II and III: cells laid out by two config keys, ours beside the paper's.

Table III puts SSEM rows against DFM columns; Table II models against losses. Every row and
column can be compared with the baseline's, paired over the other factor (one seed per cell,
so the other factor's levels are the replicates). Our best pair is chosen on validation AUC
and reported on test; the paper's is read off its table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from scipy import stats

from tf4ctr.errors import ConfigError
from tf4ctr.experiments.reports.common import (
    fmt,
    lookup,
    mean_or_none,
    metric_values,
    records_by_label,
    references,
)
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.spec import MatrixSpec
from tf4ctr.experiments.store import ResultStore


class Matrix:
    """Cell labels by (row, column), with our mean metrics and the paper's per label."""

    def __init__(self, experiment: Experiment, store: ResultStore, spec: MatrixSpec) -> None:
        self.row_key, self.col_key = spec.rows, spec.columns
        self.records = records_by_label(experiment, store)
        self.references = references(experiment)
        self.grid: dict[tuple[str, str], str] = {}  # (row, column) -> label
        for cell in experiment.cells:
            try:
                at = (
                    str(lookup(cell.raw_config, self.row_key)),
                    str(lookup(cell.raw_config, self.col_key)),
                )
            except (KeyError, TypeError):
                raise ConfigError(
                    f"{experiment.source}: cell {cell.label!r} has no {self.row_key} or "
                    f"{self.col_key} for report.matrix"
                ) from None
            self.grid.setdefault(at, cell.label)
        self.rows = list(dict.fromkeys(r for r, _ in self.grid))
        self.cols = list(dict.fromkeys(c for _, c in self.grid))
        # a study beyond the paper cites no paper figure: its tables then show ours alone
        self.has_paper = any(self.references.get(lab) for lab in self.grid.values())

    def ours(self, label: str | None, metric: str, split: str = "test") -> float | None:
        return mean_or_none(metric_values(self.records.get(label or "", []), split, metric))

    def paper(self, label: str | None, metric: str) -> float | None:
        return self.references.get(label or "", {}).get(f"test_{metric}")

    def value(self, who: str):
        return self.ours if who == "ours" else self.paper


@dataclass(frozen=True)
class BestPair:
    who: str  # ours (chosen on validation) | paper (chosen on its test table)
    label: str
    auc: float  # test
    pairs_scored: int
    pairs: int
    baseline: str | None = None
    baseline_auc: float | None = None
    above_baseline: int | None = None  # pairs with a higher test AUC than the baseline's
    others: int | None = None
    gain_auc: float | None = None  # best minus baseline, test
    gain_gauc: float | None = None


@dataclass(frozen=True)
class PairedComparison:
    axis: str  # row | column
    level: str
    base: str
    # per who ("ours", "paper"): (mean difference, higher, n, p or None), or None
    results: dict[str, tuple[float, int, int, float | None] | None]


def best_pair(m: Matrix, who: str, baseline: str | None) -> BestPair | None:
    value = m.value(who)
    scored = {lab: v for lab in m.grid.values() if (v := value(lab, "auc")) is not None}
    if not scored:
        return None
    if who == "ours":
        best = max(scored, key=lambda lab: m.ours(lab, "auc", "valid") or float("-inf"))
    else:
        best = max(scored, key=scored.__getitem__)
    result = BestPair(who, best, scored[best], len(scored), len(m.grid))
    if baseline not in scored:
        return result
    others = [lab for lab in scored if lab != baseline]
    g_best, g_base = value(best, "gauc"), value(baseline, "gauc")
    return BestPair(
        who,
        best,
        scored[best],
        len(scored),
        len(m.grid),
        baseline,
        scored[baseline],
        sum(scored[lab] > scored[baseline] for lab in others),
        len(others),
        scored[best] - scored[baseline],
        g_best - g_base if g_best is not None and g_base is not None else None,
    )


def rank_counts(m: Matrix, who: str) -> tuple[dict[str, int], dict[str, int], int]:
    """How often each column is the best and the second best (test AUC) within a row, over
    the rows that have every column: (firsts, seconds, complete rows)."""
    value = m.value(who)
    firsts = dict.fromkeys(m.cols, 0)
    seconds = dict.fromkeys(m.cols, 0)
    complete = 0
    for row in m.rows:
        scores = {col: value(m.grid.get((row, col)), "auc") for col in m.cols}
        if None in scores.values():
            continue
        complete += 1
        ranked = sorted(m.cols, key=lambda col: -scores[col])  # type: ignore[operator]
        firsts[ranked[0]] += 1
        if len(ranked) > 1:
            seconds[ranked[1]] += 1
    return firsts, seconds, complete


def paired_comparisons(m: Matrix, baseline: str, axes: str = "both") -> list[PairedComparison]:
    """Each row against the baseline's row, paired over the columns (and each column against
    the baseline's column, paired over the rows); one-sample t-test on the differences."""
    at = next((k for k, lab in m.grid.items() if lab == baseline), None)
    if at is None:
        return []
    base_row, base_col = at
    out = []
    for axis, levels, base, across in (
        ("row", m.rows if axes in ("both", "rows") else [], base_row, m.cols),
        ("column", m.cols if axes in ("both", "columns") else [], base_col, m.rows),
    ):
        for level in levels:
            if level == base:
                continue
            results: dict[str, tuple[float, int, int, float | None] | None] = {}
            for who in ("ours", "paper"):
                value = m.value(who)
                diffs = []
                for other in across:
                    key, base_key = (
                        ((level, other), (base, other))
                        if axis == "row"
                        else ((other, level), (other, base))
                    )
                    a, b = value(m.grid.get(key), "auc"), value(m.grid.get(base_key), "auc")
                    if a is not None and b is not None:
                        diffs.append(a - b)
                if not diffs:
                    results[who] = None
                    continue
                p = (
                    float(stats.ttest_1samp(diffs, 0.0).pvalue)
                    if len(diffs) >= 2 and any(diffs)
                    else None
                )
                results[who] = (statistics.mean(diffs), sum(d > 0 for d in diffs), len(diffs), p)
            out.append(PairedComparison(axis, level, base, results))
    return out


def _complete_mean(values: list[float | None]) -> str:
    """The mean, or a dash unless every value is there (a partial mean would mislead)."""
    return "–" if None in values or not values else fmt(statistics.mean(values))  # type: ignore[arg-type]


def format_matrix(m: Matrix, metric: str, name: str) -> str:
    def mean_pair(labels: list[str | None]) -> str:
        mine = _complete_mean([m.ours(lab, metric) for lab in labels])
        if not m.has_paper:
            return mine
        return f"{mine} ({_complete_mean([m.paper(lab, metric) for lab in labels])})"

    def entry(label: str | None) -> str:
        mine = fmt(m.ours(label, metric))
        return f"{mine} ({fmt(m.paper(label, metric))})" if m.has_paper else mine

    head = [f"{m.row_key} \\ {m.col_key}", *m.cols, "row mean"]
    title = f"Test {name}, ours (paper's):" if m.has_paper else f"Test {name}:"
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in m.rows:
        labels = [m.grid.get((row, col)) for col in m.cols]
        entries = [entry(lab) for lab in labels]
        lines.append(f"| {row} | " + " | ".join(entries) + f" | {mean_pair(labels)} |")
    means = [mean_pair([m.grid.get((row, col)) for row in m.rows]) for col in m.cols]
    lines.append("| column mean | " + " | ".join(means) + " | |")
    return "\n".join(lines)


def format_best_pair(b: BestPair) -> str:
    chosen = " on validation AUC" if b.who == "ours" else ""
    line = (
        f"- {b.who}: best pair{chosen} {b.label} ({b.auc:.4f} test AUC; "
        f"{b.pairs_scored} of {b.pairs} pairs)"
    )
    if b.baseline is not None:
        gain_g = f", {b.gain_gauc:+.4f} gAUC" if b.gain_gauc is not None else ""
        line += (
            f"; {b.above_baseline} of {b.others} other pairs above {b.baseline} "
            f"({b.baseline_auc:.4f}); best minus {b.baseline}: {b.gain_auc:+.4f} AUC{gain_g}"
        )
    return line


def format_ranks(m: Matrix, who: str) -> str | None:
    firsts, seconds, complete = rank_counts(m, who)
    if not complete:
        return None
    counts = ", ".join(f"{col} {firsts[col]} / {seconds[col]}" for col in m.cols)
    return f"- {who}: times best / second best in a row, of {complete} complete rows: {counts}"


def format_paired(c: PairedComparison, with_paper: bool = True) -> str:
    parts = []
    for who in ("ours", "paper") if with_paper else ("ours",):
        r = c.results[who]
        if r is None:
            parts.append(f"{who} –")
            continue
        mean, higher, n, p = r
        text = f"{who} {mean:+.4f} ({higher} of {n} higher"
        if p is not None:
            text += f", t-test p = {p:.2g}"
        parts.append(text + ")")
    over = "columns" if c.axis == "row" else "rows"
    return f"- {c.axis} {c.level} minus {c.base}, test AUC paired over {over}: " + "; ".join(parts)


def render(experiment: Experiment, store: ResultStore) -> list[str]:
    spec = experiment.report.matrix
    assert spec is not None
    m = Matrix(experiment, store, spec)
    parts = [format_matrix(m, "auc", "AUC"), format_matrix(m, "gauc", "gAUC")]
    findings = []
    if spec.best_pair:
        findings += [
            format_best_pair(b)
            for who in ("ours", "paper")
            if (b := best_pair(m, who, spec.baseline)) is not None
        ]
    if spec.baseline is not None:
        findings += [
            format_paired(c, m.has_paper)
            for c in paired_comparisons(m, spec.baseline, spec.compare)
        ]
    if spec.ranks:
        whose = ("ours", "paper") if m.has_paper else ("ours",)
        findings += [line for who in whose if (line := format_ranks(m, who))]
    if findings:
        parts.append("\n".join(findings))
    return parts
