"""Markdown reports (and figures) of an experiment's stored results, one module per kind.

Each kind's module first computes named results (numbers a test can assert) and then
formats them; :func:`render_report` picks the module by ``report.kind``.
"""

from __future__ import annotations

from pathlib import Path

from tf4ctr.experiments.reports import curves, matrix, sweep, table, timing
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore

__all__ = ["render_report"]


def _table(experiment: Experiment, store: ResultStore, figure: Path | None) -> list[str | None]:
    result = table.compute(experiment, store)
    parts: list[str | None] = [table.format_rows(result.rows)]
    if experiment.report.matrix is not None:
        parts += matrix.render(experiment, store)
    parts.append(table.format_tests(result))
    return parts


_KINDS = {
    "table": _table,
    "timing": lambda e, s, f: [timing.render(e, s)],
    "difficulty": curves.render,
    "grad_norms": curves.render,
    "sweep": sweep.render,
}


def render_report(
    experiment: Experiment, store: ResultStore, *, figures_dir: Path | None = None
) -> str:
    """Markdown for an experiment, by its ``report.kind``; figures are written to ``figures_dir``.

    Kinds: ``table`` (default; with ``repeat_best``, Table IV's significance
    test; with ``matrix``, Tables II and III), ``timing`` (Table VI),
    ``difficulty`` (Figures 2 / 10), ``grad_norms`` (Figure 5), ``sweep`` (Figures 6-9).
    """
    experiment.add_repeats(store)
    parts: list[str | None] = [f"## {experiment.name}"]
    if experiment.description:
        parts.append(experiment.description.strip())
    figure = (figures_dir / f"{experiment.name}.png") if figures_dir is not None else None
    parts += _KINDS[experiment.report.kind](experiment, store, figure)
    return "\n\n".join(p for p in parts if p is not None) + "\n"
