"""Figures 6-9: test AUC against a swept setting, the best point chosen on validation.

The paper reads trends ("performance decreases as alpha increases") off single runs; here
the summary gives Spearman's rank correlation over every run, and with two or more seeds at
every point a one-way ANOVA asks whether the setting moves AUC beyond seed noise at all.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from tf4ctr.experiments.reports.common import (
    config_value,
    label_configs,
    mean_or_none,
    metric_values,
    records_by_label,
)
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore


@dataclass(frozen=True)
class SweepPoint:
    value: Any  # the swept setting at this point (read from the cell's config)
    label: str
    test_auc: list[float]  # one per seed run
    valid_auc: list[float]
    test_gauc: float | None  # mean over seeds

    @property
    def mean_test_auc(self) -> float:
        return statistics.mean(self.test_auc)

    @property
    def mean_valid_auc(self) -> float:
        return statistics.mean(self.valid_auc)


@dataclass(frozen=True)
class SweepResult:
    param: str
    points: list[SweepPoint]
    numeric: bool  # every value a number (else positions, labelled by cell)
    best: SweepPoint | None  # highest mean validation AUC
    paper_best: Any = None
    at_paper_best: SweepPoint | None = None
    spread: float | None = None  # max - min of the mean test AUC
    spearman: tuple[float, float] | None = None  # (rho, p) over every run
    anova: tuple[float, float, float] | None = None  # (F, p, mean std within a point)

    @property
    def repeated(self) -> bool:
        return any(len(p.test_auc) > 1 for p in self.points)

    @property
    def runs(self) -> int:
        return sum(len(p.test_auc) for p in self.points)


def sweep_points(
    experiment: Experiment, store: ResultStore, param: str
) -> tuple[list[SweepPoint], bool]:
    """Finished points, sorted by value when every value is a number; and whether they all are."""
    # The swept value is read from the experiment's own cells, not the stored records: a
    # record reused from another study may leave a default (e.g. alpha 0.25) unspelled.
    configs = label_configs(experiment)
    points = []
    for label, recs in records_by_label(experiment, store).items():
        if not recs:
            continue
        value = config_value(configs, label, param, experiment.source)
        gauc = metric_values(recs, "test", "gauc")
        points.append(
            SweepPoint(
                value,
                label,
                metric_values(recs, "test", "auc"),
                metric_values(recs, "valid", "auc"),
                mean_or_none(gauc),
            )
        )
    numeric = all(isinstance(p.value, int | float) for p in points)
    if numeric:
        points.sort(key=lambda p: p.value)
    return points, numeric


def compute(experiment: Experiment, store: ResultStore) -> SweepResult:
    param = str(experiment.report.param)
    paper_best = experiment.report.paper_best
    points, numeric = sweep_points(experiment, store, param)
    if not points:
        return SweepResult(param, points, numeric, None, paper_best)
    means = [p.mean_test_auc for p in points]
    best = max(points, key=lambda p: p.mean_valid_auc)
    at_paper = next((p for p in points if paper_best in (p.value, p.label)), None)
    spearman = None
    if numeric and len(points) >= 3:
        xs = [p.value for p in points for _ in p.test_auc]
        rho, pvalue = stats.spearmanr(xs, [a for p in points for a in p.test_auc])
        spearman = (float(rho), float(pvalue))
    anova = None
    if len(points) >= 2 and all(len(p.test_auc) >= 2 for p in points):
        f_stat, pvalue = stats.f_oneway(*(p.test_auc for p in points))
        within = statistics.mean(statistics.stdev(p.test_auc) for p in points)
        anova = (float(f_stat), float(pvalue), within)
    return SweepResult(
        param,
        points,
        numeric,
        best,
        paper_best,
        at_paper,
        max(means) - min(means),
        spearman,
        anova,
    )


def format_table(result: SweepResult) -> str:
    param = result.param
    if result.repeated:
        lines = [f"| {param} | cell | seeds | test AUC (mean ± std) | test gAUC |",
                 "|---|---|---|---|---|"]  # fmt: skip
    else:
        lines = [f"| {param} | cell | test AUC | test gAUC |", "|---|---|---|---|"]
    for p in result.points:
        auc_ = f"{p.mean_test_auc:.4f}"
        if result.repeated:
            std = statistics.stdev(p.test_auc) if len(p.test_auc) > 1 else None
            auc_ = f"{len(p.test_auc)} | {auc_}" + ("" if std is None else f" ± {std:.4f}")
        gauc = "–" if p.test_gauc is None else f"{p.test_gauc:.4f}"
        lines.append(f"| {p.value} | {p.label} | {auc_} | {gauc} |")
    return "\n".join(lines)


def format_summary(result: SweepResult) -> str | None:
    if result.best is None:
        return None
    b, runs, n = result.best, result.runs, len(result.points)
    of = f"{n} points" + (f", {runs} runs" if runs > n else "")
    lines = [
        f"- best point on validation AUC: {b.label} (valid {b.mean_valid_auc:.4f}, "
        f"test {b.mean_test_auc:.4f}), of {of}"
    ]
    if result.paper_best is not None:
        at = result.at_paper_best
        ours = f" (ours there: {at.mean_test_auc:.4f})" if at is not None else ""
        lines.append(f"- the paper's best on this dataset: {result.paper_best}{ours}")
    lines.append(f"- spread of test AUC across the sweep: {result.spread:.4f}")
    if result.spearman is not None:
        rho, p = result.spearman
        over = f" (over the {runs} runs)" if runs > n else ""
        lines.append(
            f"- trend of test AUC with {result.param}{over}: Spearman rho = {rho:+.2f}, p = {p:.2g}"
        )
    if result.anova is not None:
        f_stat, p, within = result.anova
        lines.append(
            f"- does {result.param} matter beyond seed noise? one-way ANOVA F = {f_stat:.2f}, "
            f"p = {p:.2g} (mean std between seeds at a point: {within:.4f})"
        )
    return "\n".join(lines)


def draw(experiment: Experiment, result: SweepResult, path: Path) -> None:
    from tf4ctr.experiments import figures

    points = result.points
    xs = [p.value if result.numeric else i for i, p in enumerate(points)]
    series = {"test AUC": [p.mean_test_auc for p in points]}
    if all(p.test_gauc is not None for p in points):
        series["test gAUC"] = [p.test_gauc for p in points]  # type: ignore[misc]
    ticks = None if result.numeric else [p.label for p in points]
    best = result.paper_best
    mark = None  # an x position: the value itself, or the tick of the cell it names
    if ticks is None and isinstance(best, int | float):
        mark = float(best)
    elif ticks is not None and best in ticks:
        mark = float(ticks.index(best))
    figures.sweep_figure(
        path,
        xs,
        series,
        x_label=experiment.report.x_label or result.param,
        tick_labels=ticks,
        paper_best=mark,
        runs={"test AUC": [p.test_auc for p in points]} if result.repeated else None,
    )


def render(experiment: Experiment, store: ResultStore, figure: Path | None) -> list[str | None]:
    result = compute(experiment, store)
    parts: list[str | None] = [format_table(result)]
    if figure is not None and result.points:
        draw(experiment, result, figure)
        parts.append(f"![{experiment.name}]({figure.name})")
    parts.append(format_summary(result))
    return parts
