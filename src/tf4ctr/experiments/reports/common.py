"""What every report kind reads from an experiment's store, and how numbers are printed."""

from __future__ import annotations

import statistics
from typing import Any

from tf4ctr.errors import ConfigError
from tf4ctr.experiments.runner import Experiment
from tf4ctr.experiments.store import ResultStore

Record = dict[str, Any]


def records_by_label(experiment: Experiment, store: ResultStore) -> dict[str, list[Record]]:
    """Each cell label's finished records (one per seed), in the experiment's order."""
    rows: dict[str, list[Record]] = {}
    for cell in experiment.cells:
        rows.setdefault(cell.label, [])
        if cell.key in store:
            rows[cell.label].append(store.records[cell.key])
    return rows


def references(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Each label's published numbers (the first cell of the label that gives any)."""
    refs: dict[str, dict[str, Any]] = {}
    for cell in experiment.cells:
        refs[cell.label] = refs.get(cell.label) or cell.reference or {}
    return refs


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def label_configs(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Each label's run config (its first cell's): what the label stands for."""
    configs: dict[str, dict[str, Any]] = {}
    for cell in experiment.cells:
        configs.setdefault(cell.label, cell.raw_config)
    return configs


def config_value(configs: dict[str, dict[str, Any]], label: str, dotted: str, source: Any) -> Any:
    """A label's value of a dotted config key, from :func:`label_configs` (``source``, the
    experiment file, is named when the label lacks it)."""
    try:
        return lookup(configs[label], dotted)
    except (KeyError, TypeError):
        raise ConfigError(f"{source}: cell {label!r} does not set {dotted}") from None


def metric_values(records: list[Record], split: str, metric: str) -> list[float]:
    return [r[split][metric] for r in records if r[split].get(metric) is not None]


def mean_or_none(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
