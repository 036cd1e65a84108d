"""The results table (mean ± std over seeds, the paper's numbers beside) and Welch t-tests.

Table IV's test compares each ``repeat_best.with`` label (TF4CTR) with the best baseline,
chosen on validation AUC (:meth:`Experiment.best_baseline`); ``report.compare`` lists any
other pairs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from scipy import stats

from tf4ctr.experiments.reports.common import (
    markdown_table,
    mean_std,
    metric_values,
    records_by_label,
    references,
)
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore


@dataclass(frozen=True)
class TableRow:
    """One label's finished runs: per-seed test metrics, and the paper's numbers."""

    label: str
    test_auc: list[float]
    test_gauc: list[float]
    test_logloss: list[float]
    best_epochs: list[int]
    seconds_per_epoch: list[float]
    parameters: int | None
    paper_auc: float | None = None
    paper_gauc: float | None = None
    #: whether the cell gives any published number (a column for them appears if one does)
    has_reference: bool = False

    @property
    def seeds(self) -> int:
        return len(self.test_auc)


@dataclass(frozen=True)
class Significance:
    """A two-tailed Welch t-test of ``first`` against ``second`` on a test metric over seeds."""

    first: str
    second: str
    metric: str
    n: tuple[int, int]
    statistic: float | None = None
    pvalue: float | None = None
    mean_difference: float | None = None


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided Welch t-tests (TOST) of ``first`` against ``second`` on test AUC.

    ``equivalent`` holds when both one-sided nulls (difference <= -margin, difference >=
    +margin) are rejected at ``alpha`` (5 % unless the experiment says otherwise), i.e. the
    1 − 2·alpha confidence interval of the difference lies inside ±margin; None until each
    side has two seeds.
    """

    first: str
    second: str
    margin: float
    n: tuple[int, int]
    mean_difference: float | None = None
    ci: tuple[float, float] | None = None  # at 1 - 2 * alpha
    pvalue: float | None = None  # the larger of the two one-sided p-values
    alpha: float = 0.05

    @property
    def equivalent(self) -> bool | None:
        return None if self.pvalue is None else self.pvalue < self.alpha


@dataclass(frozen=True)
class TableResult:
    rows: list[TableRow]
    best_baseline: str | None = None
    tests: list[tuple[Significance, str]] = field(default_factory=list)  # (test, "best baseline ")
    waiting_for_baseline: bool = False
    equivalences: list[Equivalence] = field(default_factory=list)


def table_rows(experiment: Experiment, store: ResultStore) -> list[TableRow]:
    refs = references(experiment)
    rows = []
    for label, recs in records_by_label(experiment, store).items():
        ref = refs[label]
        rows.append(
            TableRow(
                label=label,
                test_auc=metric_values(recs, "test", "auc"),
                test_gauc=metric_values(recs, "test", "gauc"),
                test_logloss=metric_values(recs, "test", "logloss"),
                best_epochs=[r["best_epoch"] for r in recs],
                seconds_per_epoch=[r["seconds_per_epoch"] for r in recs],
                parameters=recs[0]["parameters"] if recs else None,
                paper_auc=ref.get("test_auc"),
                paper_gauc=ref.get("test_gauc"),
                has_reference=bool(ref),
            )
        )
    return rows


def significance(
    experiment: Experiment, store: ResultStore, first: str, second: str, metric: str = "auc"
) -> Significance:
    """Two-tailed t-test on the test ``metric`` of two cell labels over their seeds.

    Welch's form (no equal-variance assumption); the paper reports two-tailed
    t-test p-values for TF4CTR against the best baseline over five runs.
    """
    rows = records_by_label(experiment, store)
    a = metric_values(rows.get(first, []), "test", metric)
    b = metric_values(rows.get(second, []), "test", metric)
    if len(a) < 2 or len(b) < 2:
        return Significance(first, second, metric, (len(a), len(b)))
    test = stats.ttest_ind(a, b, equal_var=False)
    return Significance(
        first,
        second,
        metric,
        (len(a), len(b)),
        statistic=float(test.statistic),
        pvalue=float(test.pvalue),
        mean_difference=statistics.mean(a) - statistics.mean(b),
    )


def equivalence(
    experiment: Experiment,
    store: ResultStore,
    first: str,
    second: str,
    margin: float,
    alpha: float = 0.05,
) -> Equivalence:
    """TOST on test AUC: H0 |mean(first) - mean(second)| >= margin, Welch's standard error."""
    rows = records_by_label(experiment, store)
    a = metric_values(rows.get(first, []), "test", "auc")
    b = metric_values(rows.get(second, []), "test", "auc")
    if len(a) < 2 or len(b) < 2:
        return Equivalence(first, second, margin, (len(a), len(b)), alpha=alpha)
    # shifting one side by the margin turns each one-sided null into a plain Welch test
    above = stats.ttest_ind([x + margin for x in a], b, equal_var=False, alternative="greater")
    below = stats.ttest_ind([x - margin for x in a], b, equal_var=False, alternative="less")
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(1 - 2 * alpha)
    return Equivalence(
        first,
        second,
        margin,
        (len(a), len(b)),
        mean_difference=statistics.mean(a) - statistics.mean(b),
        ci=(float(ci.low), float(ci.high)),
        pvalue=float(max(above.pvalue, below.pvalue)),
        alpha=alpha,
    )


def compute(experiment: Experiment, store: ResultStore) -> TableResult:
    tests: list[tuple[Significance, str]] = []
    spec = experiment.report.repeat_best
    best = experiment.best_baseline(store) if spec else None
    if spec and best is not None:
        for label in spec.with_:
            tests += [
                (significance(experiment, store, label, best, m), "best baseline ")
                for m in ("auc", "gauc")
            ]
    for first, second in experiment.report.compare:
        tests += [(significance(experiment, store, first, second, m), "") for m in ("auc", "gauc")]
    eq = experiment.report.equivalence
    return TableResult(
        rows=table_rows(experiment, store),
        best_baseline=best,
        tests=tests,
        waiting_for_baseline=bool(spec) and best is None,
        equivalences=[
            equivalence(experiment, store, a, b, eq.margin, eq.alpha)
            for a, b in (eq.pairs if eq else ())
        ],
    )


def format_rows(rows: list[TableRow]) -> str:
    has_gauc = any(r.test_gauc for r in rows)
    has_ref = any(r.has_reference for r in rows)
    has_ref_gauc = any(r.paper_gauc is not None for r in rows)
    head = ["model", "seeds", "test AUC"] + (["test gAUC"] if has_gauc else [])
    head += ["test logloss", "best epoch", "s/epoch", "params"] + (["paper AUC"] if has_ref else [])
    head += ["paper gAUC"] if has_ref_gauc else []
    out = []
    for r in rows:
        cells = [r.label, str(r.seeds), mean_std(r.test_auc)]
        if has_gauc:
            cells.append(mean_std(r.test_gauc))
        cells.append(mean_std(r.test_logloss))
        cells.append(", ".join(str(e) for e in r.best_epochs) or "–")
        cells.append(mean_std(r.seconds_per_epoch, 1))
        cells.append(f"{r.parameters:,}" if r.parameters is not None else "–")
        if has_ref:
            cells.append(f"{r.paper_auc:.4f}" if r.paper_auc is not None else "–")
        if has_ref_gauc:
            cells.append(f"{r.paper_gauc:.4f}" if r.paper_gauc is not None else "–")
        out.append(cells)
    return markdown_table(head, out)


def format_test(test: Significance, what: str) -> str:
    if test.pvalue is None:
        return f"- {test.first} vs {test.second} ({test.metric}): needs two or more seeds of each"
    n1, n2 = test.n
    return (
        f"- {test.first} vs {what}{test.second}, test {test.metric.upper()}: difference "
        f"{test.mean_difference:+.4f} (means over {n1} and {n2} seeds), "
        f"two-tailed Welch t = {test.statistic:.2f}, p = {test.pvalue:.3g}"
    )


def format_tests(result: TableResult) -> str | None:
    lines = []
    if result.waiting_for_baseline:
        lines.append("- the best baseline is chosen once every candidate has a result")
    elif result.best_baseline is not None:
        lines.append(
            f"- best baseline, chosen on validation AUC among the grid's own seeds: "
            f"{result.best_baseline}"
        )
    lines += [format_test(t, what) for t, what in result.tests]
    lines += [format_equivalence(e) for e in result.equivalences]
    return "\n".join(lines) if lines else None


def format_equivalence(e: Equivalence) -> str:
    head = f"- {e.first} vs {e.second}, equivalence of test AUC within ±{e.margin:g} (TOST)"
    if e.pvalue is None or e.ci is None or e.mean_difference is None:
        return f"{head}: needs two or more seeds of each"
    level = "" if e.alpha == 0.05 else f" (each side at {e.alpha:g})"
    verdict = (
        "equivalent"
        if e.equivalent
        else "not shown equivalent (the interval reaches beyond the margin)"
    )
    return (
        f"{head}: difference {e.mean_difference:+.4f} (means over {e.n[0]} and {e.n[1]} seeds), "
        f"{100 * (1 - 2 * e.alpha):g} % CI [{e.ci[0]:+.4f}, {e.ci[1]:+.4f}], "
        f"TOST p = {e.pvalue:.3g}{level}: {verdict}"
    )


def results_table(experiment: Experiment, store: ResultStore) -> str:
    """One row per cell label (mean ± std over seeds), in the experiment's order."""
    return format_rows(table_rows(experiment, store))
