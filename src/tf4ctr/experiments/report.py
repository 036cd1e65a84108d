"""Markdown tables from an experiment's stored results."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from scipy import stats

from tf4ctr.errors import ConfigError
from tf4ctr.experiments.runner import Experiment, ResultStore


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _references(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Each label's published numbers (the first cell of the label that gives any)."""
    references: dict[str, dict[str, Any]] = {}
    for cell in experiment.cells:
        references[cell.label] = references.get(cell.label) or cell.reference or {}
    return references


def results_table(experiment: Experiment, store: ResultStore) -> str:
    """One row per cell label (mean ± std over seeds), in the experiment's order."""
    rows = _records_by_label(experiment, store)
    references = _references(experiment)
    has_gauc = any("gauc" in r["test"] for recs in rows.values() for r in recs)
    has_ref = any(references.values())
    has_ref_gauc = any("test_gauc" in ref for ref in references.values())
    head = ["model", "seeds", "test AUC"] + (["test gAUC"] if has_gauc else [])
    head += ["test logloss", "best epoch", "s/epoch", "params"] + (["paper AUC"] if has_ref else [])
    head += ["paper gAUC"] if has_ref_gauc else []
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
        ref = references[label]
        if has_ref:
            cells.append(f"{ref['test_auc']:.4f}" if "test_auc" in ref else "–")
        if has_ref_gauc:
            cells.append(f"{ref['test_gauc']:.4f}" if "test_gauc" in ref else "–")
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


def _records_by_label(
    experiment: Experiment, store: ResultStore
) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for cell in experiment.cells:
        rows.setdefault(cell.label, [])
        if cell.key in store:
            rows[cell.label].append(store.records[cell.key])
    return rows


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _test_lines(experiment: Experiment, store: ResultStore, first: str, second: str,
                what: str) -> list[str]:  # fmt: skip
    lines = []
    for metric in ("auc", "gauc"):
        result = significance(experiment, store, first, second, metric)
        if "pvalue" in result:
            n1, n2 = result["n"]
            lines.append(
                f"- {first} vs {what}{second}, test {metric.upper()}: difference "
                f"{result['mean_difference']:+.4f} (means over {n1} and {n2} seeds), "
                f"two-tailed Welch t = {result['statistic']:.2f}, p = {result['pvalue']:.3g}"
            )
        else:
            lines.append(f"- {first} vs {second} ({metric}): needs two or more seeds of each")
    return lines


def significance_lines(experiment: Experiment, store: ResultStore) -> list[str]:
    """Table IV's test (each ``repeat_best.with`` label against the best baseline) and the
    pairs listed under ``report.compare`` (``[[A, B], ...]``): Welch t-tests over seeds."""
    lines = []
    spec = experiment.report.get("repeat_best")
    if spec:
        best = experiment.best_baseline(store)
        if best is None:
            lines.append("- the best baseline is chosen once every candidate has a result")
        else:
            for label in spec.get("with", []):
                lines += _test_lines(experiment, store, str(label), best, "best baseline ")
    for pair in experiment.report.get("compare", []):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(
                f"{experiment.source}: report.compare: expected pairs of labels, found {pair!r}"
            )
        lines += _test_lines(experiment, store, str(pair[0]), str(pair[1]), "")
    return lines


def timing_table(experiment: Experiment, store: ResultStore, baseline: str) -> str:
    """Table VI: first-epoch training time and validation inference time, relative to a baseline."""
    rows = _records_by_label(experiment, store)
    base = rows.get(baseline) or []
    if not base:
        return f"(no result for the baseline '{baseline}' yet)"

    def med(recs: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in recs if r.get(key) is not None]
        return statistics.median(values) if values else None

    b_train, b_infer = med(base, "first_epoch_seconds"), med(base, "valid_seconds")
    references = _references(experiment)
    has_ref = any(references.values())
    head = ["model", "first-epoch training (s)", f"× {baseline}", "validation inference (s)"]
    head += [f"× {baseline}"] + (["paper × (training)", "paper × (inference)"] if has_ref else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def paper(label: str, key: str) -> str:
        value = references[label].get(key)
        return "–" if value is None else f"{value:.2f}"

    for label, recs in rows.items():
        train, infer = med(recs, "first_epoch_seconds"), med(recs, "valid_seconds")
        cells = [label, "–", "–", "–", "–"]
        if train is not None:
            cells[1] = f"{train:.1f}"
            cells[2] = f"{train / b_train:.2f}" if b_train else "–"
            cells[3] = f"{infer:.2f}" if infer is not None else "–"
            cells[4] = f"{infer / b_infer:.2f}" if infer is not None and b_infer else "–"
        if has_ref:
            cells += [paper(label, "train_ratio"), paper(label, "inference_ratio")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# (value of the swept parameter, cell label, test AUC of each seed run, mean test gAUC)
_SweepPoint = tuple[Any, str, list[float], float | None]


def _sweep_points(
    experiment: Experiment, store: ResultStore, param: str
) -> tuple[list[_SweepPoint], bool]:
    """(value of ``param``, label, test AUC of each seed run, mean test gAUC) per finished
    label, sorted by value when every value is a number; and whether they all are."""
    # The swept value is read from the experiment's own cell, not the stored record: a
    # record reused from another study may leave a default (e.g. alpha 0.25) unspelled.
    configs = {}
    for cell in experiment.cells:
        configs.setdefault(cell.label, cell.raw_config)
    points = []
    for label, recs in _records_by_label(experiment, store).items():
        if not recs:
            continue
        try:
            x = _lookup(configs[label], param)
        except (KeyError, TypeError):
            raise ConfigError(
                f"{experiment.source}: report.param: cell {label!r} does not set {param}"
            ) from None
        aucs = [r["test"]["auc"] for r in recs]
        gauc_values = [r["test"]["gauc"] for r in recs if "gauc" in r["test"]]
        points.append((x, label, aucs, statistics.mean(gauc_values) if gauc_values else None))
    numeric = all(isinstance(p[0], int | float) for p in points)
    if numeric:
        points.sort(key=lambda p: p[0])
    return points, numeric


def _has_repeats(points: list[_SweepPoint]) -> bool:
    """Whether some point of a sweep has more than one seed run."""
    return any(len(p[2]) > 1 for p in points)


def sweep_table(
    experiment: Experiment, store: ResultStore, param: str
) -> tuple[str, list[float], dict[str, list[float]], list[str] | None]:
    """AUC / gAUC against the value of ``param`` (a dotted config key) in each cell;
    for a non-numeric parameter (e.g. a layer list) the x values are positions and
    the cell labels are returned as tick labels. With more than one seed at some point
    the table gives the seed count and the AUC's standard deviation."""
    return _sweep_table(*_sweep_points(experiment, store, param), param)


def _sweep_table(
    points: list[_SweepPoint], numeric: bool, param: str
) -> tuple[str, list[float], dict[str, list[float]], list[str] | None]:
    repeated = _has_repeats(points)
    if repeated:
        lines = [f"| {param} | cell | seeds | test AUC (mean ± std) | test gAUC |",
                 "|---|---|---|---|---|"]  # fmt: skip
    else:
        lines = [f"| {param} | cell | test AUC | test gAUC |", "|---|---|---|---|"]
    for x, label, aucs, gauc in points:
        auc_ = f"{statistics.mean(aucs):.4f}"
        if repeated:
            std = statistics.stdev(aucs) if len(aucs) > 1 else None
            auc_ = f"{len(aucs)} | {auc_}" + ("" if std is None else f" ± {std:.4f}")
        lines.append(f"| {x} | {label} | {auc_} | {'–' if gauc is None else f'{gauc:.4f}'} |")
    xs = [p[0] if numeric else i for i, p in enumerate(points)]
    series = {"test AUC": [statistics.mean(p[2]) for p in points]}
    if all(p[3] is not None for p in points):
        series["test gAUC"] = [p[3] for p in points]
    ticks = None if numeric else [p[1] for p in points]
    return "\n".join(lines), xs, series, ticks


def sweep_summary(
    experiment: Experiment, store: ResultStore, param: str, paper_best: Any = None
) -> list[str]:
    """Where the sweep peaks, beside the paper's optimum (``report.paper_best``: a value of
    ``param`` or a cell label), and for a numeric parameter the rank correlation of test AUC
    with it (Spearman over every run; the paper reads trends such as "performance decreases
    as alpha increases" off single runs, so the p-value says how much the runs can carry).
    With two or more seeds at every point, a one-way ANOVA asks whether the parameter moves
    the AUC at all beyond seed noise."""
    return _sweep_summary(*_sweep_points(experiment, store, param), param, paper_best)


def _sweep_summary(
    points: list[_SweepPoint],
    numeric: bool,
    param: str,
    paper_best: Any,
) -> list[str]:
    if not points:
        return []
    means = [statistics.mean(p[2]) for p in points]
    best = max(range(len(points)), key=means.__getitem__)
    runs = sum(len(p[2]) for p in points)
    of = f"{len(points)} points" + (f", {runs} runs" if runs > len(points) else "")
    lines = [f"- best test AUC here: {points[best][1]} ({means[best]:.4f}), of {of}"]
    if paper_best is not None:
        at = [i for i, p in enumerate(points) if paper_best in (p[0], p[1])]
        at_paper = f" (ours there: {means[at[0]]:.4f})" if at else ""
        lines.append(f"- the paper's best on this dataset: {paper_best}{at_paper}")
    lines.append(f"- spread of test AUC across the sweep: {max(means) - min(means):.4f}")
    if numeric and len(points) >= 3:
        xs = [p[0] for p in points for _ in p[2]]
        rho, pvalue = stats.spearmanr(xs, [a for p in points for a in p[2]])
        over = f" (over the {runs} runs)" if runs > len(points) else ""
        lines.append(
            f"- trend of test AUC with {param}{over}: Spearman rho = {rho:+.2f}, p = {pvalue:.2g}"
        )
    if len(points) >= 2 and all(len(p[2]) >= 2 for p in points):
        f_stat, pvalue = stats.f_oneway(*(p[2] for p in points))
        within = statistics.mean(statistics.stdev(p[2]) for p in points)
        lines.append(
            f"- does {param} matter beyond seed noise? one-way ANOVA F = {f_stat:.2f}, "
            f"p = {pvalue:.2g} (mean std between seeds at a point: {within:.4f})"
        )
    return lines


class _Matrix:
    """Cells laid out by two config keys (Table III: SSEM rows x DFM columns), with our
    mean test metrics and the paper's numbers per cell label."""

    def __init__(self, experiment: Experiment, store: ResultStore, spec: dict[str, Any]):
        try:
            self.row_key, self.col_key = str(spec["rows"]), str(spec["columns"])
        except KeyError as exc:
            raise ConfigError(
                f"{experiment.source}: report.matrix: expected keys rows and columns, missing {exc}"
            ) from None
        self.records = _records_by_label(experiment, store)
        self.references = _references(experiment)
        self.grid: dict[tuple[str, str], str] = {}  # (row, column) -> label
        for cell in experiment.cells:
            try:
                at = (
                    str(_lookup(cell.raw_config, self.row_key)),
                    str(_lookup(cell.raw_config, self.col_key)),
                )
            except (KeyError, TypeError):
                raise ConfigError(
                    f"{experiment.source}: cell {cell.label!r} has no {self.row_key} or "
                    f"{self.col_key} for report.matrix"
                ) from None
            self.grid.setdefault(at, cell.label)
        self.rows = list(dict.fromkeys(r for r, _ in self.grid))
        self.cols = list(dict.fromkeys(c for _, c in self.grid))

    def ours(self, label: str | None, metric: str) -> float | None:
        values = [r["test"][metric] for r in self.records.get(label or "", [])
                  if metric in r["test"]]  # fmt: skip
        return statistics.mean(values) if values else None

    def paper(self, label: str | None, metric: str) -> float | None:
        return self.references.get(label or "", {}).get(f"test_{metric}")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _complete_mean(values: list[float | None]) -> str:
    """The mean, or a dash unless every value is there (a partial mean would mislead)."""
    return "–" if None in values or not values else _fmt(statistics.mean(values))  # type: ignore[arg-type]


def _matrix_table(m: _Matrix, metric: str, name: str) -> str:
    def mean_pair(labels: list[str | None]) -> str:
        mine = _complete_mean([m.ours(lab, metric) for lab in labels])
        return f"{mine} ({_complete_mean([m.paper(lab, metric) for lab in labels])})"

    head = [f"{m.row_key} \\ {m.col_key}", *m.cols, "row mean"]
    lines = [f"Test {name}, ours (paper's):", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    for row in m.rows:
        labels = [m.grid.get((row, col)) for col in m.cols]
        entries = [f"{_fmt(m.ours(lab, metric))} ({_fmt(m.paper(lab, metric))})" for lab in labels]
        lines.append(f"| {row} | " + " | ".join(entries) + f" | {mean_pair(labels)} |")
    means = [mean_pair([m.grid.get((row, col)) for row in m.rows]) for col in m.cols]
    lines.append("| column mean | " + " | ".join(means) + " | |")
    return "\n".join(lines)


def _best_pair_line(m: _Matrix, who: str, baseline: str | None) -> str | None:
    value = m.ours if who == "ours" else m.paper
    scored = {lab: v for lab in m.grid.values() if (v := value(lab, "auc")) is not None}
    if not scored:
        return None
    best = max(scored, key=scored.__getitem__)
    line = (
        f"- {who}: best pair {best} ({scored[best]:.4f} AUC; {len(scored)} of {len(m.grid)} pairs)"
    )
    if baseline in scored:
        others = [lab for lab in scored if lab != baseline]
        above = sum(scored[lab] > scored[baseline] for lab in others)
        g_best, g_base = value(best, "gauc"), value(baseline, "gauc")
        gain_g = (
            f", {g_best - g_base:+.4f} gAUC" if g_best is not None and g_base is not None else ""
        )
        line += (
            f"; {above} of {len(others)} other pairs above {baseline} ({scored[baseline]:.4f}); "
            f"best minus {baseline}: {scored[best] - scored[baseline]:+.4f} AUC{gain_g}"
        )
    return line


def _rank_line(m: _Matrix, who: str) -> str | None:
    """How often each column is the best and the second best within a row (Table II: "TF
    Loss best, R-CE often second"), over the rows that have every column."""
    value = m.ours if who == "ours" else m.paper
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
    if not complete:
        return None
    counts = ", ".join(f"{col} {firsts[col]} / {seconds[col]}" for col in m.cols)
    return f"- {who}: times best / second best in a row, of {complete} complete rows: {counts}"


def _paired_lines(m: _Matrix, baseline: str, axes: str = "both") -> list[str]:
    """Each row against the baseline's row, paired over the columns (and each column against
    the baseline's column, paired over the rows): with one seed per cell, the other factor's
    levels are the replicates. Paired t-test on test AUC (scipy), ours and the paper's."""
    at = next((k for k, lab in m.grid.items() if lab == baseline), None)
    if at is None:
        return []
    base_row, base_col = at
    lines = []
    for axis, levels, base, across in (
        ("row", m.rows if axes in ("both", "rows") else [], base_row, m.cols),
        ("column", m.cols if axes in ("both", "columns") else [], base_col, m.rows),
    ):
        for level in levels:
            if level == base:
                continue
            parts = []
            for who, value in (("ours", m.ours), ("paper", m.paper)):
                diffs = []
                for other in across:
                    # grid keys are (row, column)
                    if axis == "row":
                        key, base_key = (level, other), (base, other)
                    else:
                        key, base_key = (other, level), (other, base)
                    a, b = value(m.grid.get(key), "auc"), value(m.grid.get(base_key), "auc")
                    if a is not None and b is not None:
                        diffs.append(a - b)
                if not diffs:
                    parts.append(f"{who} –")
                    continue
                text = (f"{who} {statistics.mean(diffs):+.4f} "
                        f"({sum(d > 0 for d in diffs)} of {len(diffs)} higher")  # fmt: skip
                if len(diffs) >= 2 and any(diffs):
                    text += f", t-test p = {stats.ttest_1samp(diffs, 0.0).pvalue:.2g}"
                parts.append(text + ")")
            lines.append(
                f"- {axis} {level} minus {base}, test AUC paired over "
                f"{'columns' if axis == 'row' else 'rows'}: " + "; ".join(parts)
            )
    return lines


def matrix_tables(experiment: Experiment, store: ResultStore, spec: dict[str, Any]) -> list[str]:
    """Table III's layout: one row per value of ``spec['rows']`` (a dotted config key, e.g.
    ``model.ssem``), one column per value of ``spec['columns']`` (``model.fusion``); each
    entry ours (paper's), for test AUC and gAUC. With ``spec['baseline']`` (a cell label,
    the paper's Share + Sum) it also counts the pairs above it, the best pair's gain, and
    compares every row and column (``spec['compare']``: ``both``, ``rows`` or ``columns``)
    with the baseline's, paired over the other factor; with ``spec['ranks']`` it counts how
    often each column ranks first and second within a row; ``spec['best_pair']: false``
    drops the best-pair lines (Table II, where pairs of different models do not compare)."""
    m = _Matrix(experiment, store, spec)
    parts = [_matrix_table(m, "auc", "AUC"), _matrix_table(m, "gauc", "gAUC")]
    baseline = spec.get("baseline")
    baseline = None if baseline is None else str(baseline)
    findings = []
    if spec.get("best_pair", True):
        findings += [
            line for who in ("ours", "paper") if (line := _best_pair_line(m, who, baseline))
        ]
    if baseline is not None:
        axes = str(spec.get("compare", "both"))
        if axes not in ("both", "rows", "columns"):
            raise ConfigError(
                f"{experiment.source}: report.matrix.compare: expected both, rows or columns, "
                f"found {axes!r}"
            )
        findings += _paired_lines(m, baseline, axes)
    if spec.get("ranks"):
        findings += [line for who in ("ours", "paper") if (line := _rank_line(m, who))]
    if findings:
        parts.append("\n".join(findings))
    return parts


def render_report(
    experiment: Experiment, store: ResultStore, *, figures_dir: Path | None = None
) -> str:
    """Markdown for an experiment, by its ``report.kind``; figures are written to ``figures_dir``.

    Kinds: ``table`` (default; with ``repeat_best``, Table IV's significance
    test), ``timing`` (Table VI), ``difficulty`` (Figures 2 / 10),
    ``grad_norms`` (Figure 5), ``sweep`` (Figures 6-9).
    """
    from tf4ctr.experiments import figures

    experiment.add_repeats(store)
    kind = str(experiment.report.get("kind", "table"))
    parts = [f"## {experiment.name}"]
    if experiment.description:
        parts.append(experiment.description.strip())
    figure_path = (figures_dir / f"{experiment.name}.png") if figures_dir is not None else None
    if kind == "table":
        parts.append(results_table(experiment, store))
        if "matrix" in experiment.report:
            parts += matrix_tables(experiment, store, dict(experiment.report["matrix"]))
        tests = significance_lines(experiment, store)
        if tests:  # one Markdown list, not one paragraph per line
            parts.append("\n".join(tests))
    elif kind == "timing":
        parts.append(timing_table(experiment, store, str(experiment.report.get("baseline", "DNN"))))
    elif kind in ("difficulty", "grad_norms"):
        parts.append(results_table(experiment, store))
        rows = _records_by_label(experiment, store)
        if kind == "difficulty":
            data = {label: recs[0]["history"] for label, recs in rows.items() if recs}
            ready = bool(data) and all(
                any("difficulty" in h for h in hist) for hist in data.values()
            )
            draw = (lambda p: figures.difficulty_figure(p, data)) if ready else None
        else:
            data = {label: recs[0]["logit_grad_norms"] for label, recs in rows.items()
                    if recs and "logit_grad_norms" in recs[0]}  # fmt: skip
            draw = (lambda p: figures.grad_norm_figure(p, data)) if data else None
        if draw is not None and figure_path is not None:
            draw(figure_path)
            parts.append(f"![{experiment.name}]({figure_path.name})")
    elif kind == "sweep":
        param = str(experiment.report["param"])
        points, numeric = _sweep_points(experiment, store, param)
        table, xs, series, ticks = _sweep_table(points, numeric, param)
        parts.append(table)
        if figure_path is not None and xs:
            x_label = str(experiment.report.get("x_label", param))
            best = experiment.report.get("paper_best")
            mark = None  # an x position: the value itself, or the tick of the cell it names
            if ticks is None and isinstance(best, int | float):
                mark = float(best)
            elif ticks is not None and best in ticks:
                mark = float(ticks.index(best))
            runs = {"test AUC": [p[2] for p in points]} if _has_repeats(points) else None
            figures.sweep_figure(
                figure_path,
                xs,
                series,
                x_label=x_label,
                tick_labels=ticks,
                paper_best=mark,
                runs=runs,
            )
            parts.append(f"![{experiment.name}]({figure_path.name})")
        summary = _sweep_summary(points, numeric, param, experiment.report.get("paper_best"))
        parts.append("\n".join(summary) if summary else None)
    else:
        raise ConfigError(
            f"{experiment.source}: report.kind: expected one of table, timing, difficulty, "
            f"grad_norms, sweep, found {kind!r}"
        )
    return "\n\n".join(p for p in parts if p is not None) + "\n"
