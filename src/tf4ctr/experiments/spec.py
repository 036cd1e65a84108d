"""The experiment file, parsed into typed objects; a wrong key or value is one line naming both.

```yaml
name: frappe_x1_table4
base: ../frappe_x1/dualmlp.yaml          # the run config every cell overrides
seeds: [2023]
store: ../../docs/results/frappe_x1/frappe_x1_table4.jsonl
reuse: [../../docs/results/frappe_x1/frappe_zoo.jsonl]
report:
  repeat_best: {among: [DeepFM, DCN], with: [TF4CTR], seeds: 5}
cells:
  - {label: DeepFM, model: {name: deepfm}, reference: {test_auc: 0.9837}}
```

Nothing here reads a run config or trains: :mod:`tf4ctr.experiments.runner` turns the spec
into cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf4ctr.errors import ConfigError

__all__ = [
    "REPORT_KINDS",
    "CellSpec",
    "ExperimentSpec",
    "MatrixSpec",
    "RepeatBestSpec",
    "ReportSpec",
    "parse_experiment",
]

REPORT_KINDS = ("table", "timing", "difficulty", "grad_norms", "sweep")


@dataclass(frozen=True)
class RepeatBestSpec:
    """Table IV: more seeds for the best of ``among`` (on validation) and for ``with``."""

    among: tuple[str, ...]
    with_: tuple[str, ...] = ()
    seeds: int = 5


@dataclass(frozen=True)
class EquivalenceSpec:
    """Two one-sided Welch tests (TOST): is each pair's test-AUC difference within ±margin?
    Stated in the experiment file, before any of its runs, so the margin is not picked after."""

    pairs: tuple[tuple[str, str], ...]
    margin: float
    #: level of each one-sided test; below 5 % when a study is extended after a first look
    alpha: float = 0.05


@dataclass(frozen=True)
class MatrixSpec:
    """Cells laid out by two dotted config keys (Table III: model.ssem x model.fusion)."""

    rows: str
    columns: str
    baseline: str | None = None
    compare: str = "both"  # both | rows | columns
    ranks: bool = False
    best_pair: bool = True


@dataclass(frozen=True)
class ReportSpec:
    """How ``tf4ctr report`` presents an experiment (``kind`` picks the report module)."""

    kind: str = "table"
    param: str | None = None  # sweep: the swept dotted key
    x_label: str | None = None  # sweep: the figure's x axis
    paper_best: Any = None  # sweep: the paper's optimum (a value, or a cell label)
    baseline: str = "DNN"  # timing: the label every ratio is relative to
    repeat_best: RepeatBestSpec | None = None
    compare: tuple[tuple[str, str], ...] = ()  # pairs of labels to t-test
    matrix: MatrixSpec | None = None
    equivalence: EquivalenceSpec | None = None


@dataclass(frozen=True)
class CellSpec:
    """One line of ``cells``: a label, its overrides on the base, its own seeds, the paper's numbers."""

    label: str
    overrides: dict[str, Any]
    model: dict[str, Any] | None = None
    seeds: tuple[int, ...] | None = None
    reference: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    path: Path
    name: str
    base: Path
    cells: tuple[CellSpec, ...]
    seeds: tuple[int, ...] | None = None
    store: Path | None = None
    runs_dir: Path | None = None
    description: str = ""
    reuse: tuple[Path, ...] = ()
    report: ReportSpec = field(default_factory=ReportSpec)


class _Where:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def keys(self, mapping: Any, allowed: tuple[str, ...], key: str) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise self.error(key, f"expected a mapping, found {type(mapping).__name__}")
        for k in mapping:
            if k not in allowed:
                raise self.error(
                    f"{key}.{k}" if key else str(k),
                    f"unknown key (expected one of: {', '.join(allowed)})",
                )
        return mapping

    def labels(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of cell labels, found {value!r}")
        return tuple(value)

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, found {value!r}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a string, found {value!r}")
        return value


_TOP = ("name", "base", "seeds", "cells", "store", "runs_dir", "description", "reuse", "report")
_REPORT = (
    "kind", "param", "x_label", "paper_best", "baseline", "repeat_best", "compare", "matrix",
    "equivalence",
)  # fmt: skip
_EQUIVALENCE = ("pairs", "margin", "alpha")
_REPEAT = ("among", "with", "seeds")
_MATRIX = ("rows", "columns", "baseline", "compare", "ranks", "best_pair")


def seed_list(value: Any, where: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    ):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers")
    return tuple(value)


def parse_experiment(path: Path, raw: Any) -> ExperimentSpec:
    """Check an experiment file's mapping key by key (base configs are not read here)."""
    w = _Where(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    w.keys(raw, _TOP, "")
    for k in ("name", "base", "cells"):
        if k not in raw:
            raise w.error(k, "missing required key")
    reuse = raw.get("reuse", [])
    if not isinstance(reuse, list) or not all(isinstance(r, str) for r in reuse):
        raise w.error("reuse", "expected a list of result-store paths")
    cells = raw["cells"]
    if not isinstance(cells, list) or not cells:
        raise w.error("cells", "expected a non-empty list")

    def relative(key: str) -> Path | None:
        return path.parent / w.text(raw[key], key) if key in raw else None

    spec = ExperimentSpec(
        path=path,
        name=w.text(str(raw["name"]), "name"),
        base=(path.parent / w.text(raw["base"], "base")).resolve(),
        cells=tuple(_parse_cell(w, i, c) for i, c in enumerate(cells, start=1)),
        seeds=seed_list(raw["seeds"], str(path)) if "seeds" in raw else None,
        store=relative("store"),
        runs_dir=relative("runs_dir"),
        description=str(raw.get("description", "")),
        reuse=tuple((path.parent / r).resolve() for r in reuse),
        report=_parse_report(w, raw.get("report", {})),
    )
    _check_labels(w, spec)
    return spec


def _check_labels(w: _Where, spec: ExperimentSpec) -> None:
    """Every label the report names is a cell's: a typo must not drop a test silently."""
    labels = [c.label for c in spec.cells]
    if len(set(labels)) != len(labels):
        twice = next(lab for lab in labels if labels.count(lab) > 1)
        raise w.error("cells", f"label {twice!r} appears twice")
    r = spec.report
    named: list[tuple[str, str]] = [(f"report.compare[{i}]", lab)
                                    for i, pair in enumerate(r.compare, 1) for lab in pair]  # fmt: skip
    if r.repeat_best is not None:
        named += [("report.repeat_best.among", lab) for lab in r.repeat_best.among]
        named += [("report.repeat_best.with", lab) for lab in r.repeat_best.with_]
    if r.equivalence is not None:
        named += [(f"report.equivalence.pairs[{i}]", lab)
                  for i, pair in enumerate(r.equivalence.pairs, 1) for lab in pair]  # fmt: skip
    if r.matrix is not None and r.matrix.baseline is not None:
        named.append(("report.matrix.baseline", r.matrix.baseline))
    if r.kind == "timing":
        named.append(("report.baseline", r.baseline))
    for key, label in named:
        if label not in labels:
            raise w.error(key, f"no cell is labelled {label!r}")


def _parse_cell(w: _Where, i: int, raw: Any) -> CellSpec:
    if not isinstance(raw, dict) or "label" not in raw:
        raise w.error(f"cells[{i}]", "expected a mapping with a 'label'")
    rest = dict(raw)
    label = str(rest.pop("label"))
    where = f"{w.path}: cells[{i}] ({label})"
    seeds = seed_list(rest.pop("seeds"), where) if "seeds" in rest else None
    reference = rest.pop("reference", None)
    if reference is not None and not isinstance(reference, dict):
        raise w.error(f"cells[{i}].reference", "expected a mapping of published numbers")
    model = rest.pop("model", None)
    if model is not None and not isinstance(model, dict):
        raise w.error(f"cells[{i}].model", "expected a mapping (name and hyperparameters)")
    return CellSpec(label, rest, model, seeds, reference)


def _parse_report(w: _Where, raw: Any) -> ReportSpec:
    raw = w.keys(raw or {}, _REPORT, "report")
    kind = raw.get("kind", "table")
    if kind not in REPORT_KINDS:
        raise w.error("report.kind", f"expected one of {', '.join(REPORT_KINDS)}, found {kind!r}")
    if kind == "sweep" and "param" not in raw:
        raise w.error("report.param", "a sweep report needs the swept key, e.g. loss.alpha")
    repeat = None
    if "repeat_best" in raw:
        r = w.keys(raw["repeat_best"], _REPEAT, "report.repeat_best")
        seeds = r.get("seeds", 5)
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 2:
            raise w.error("report.repeat_best.seeds", f"expected an integer >= 2, found {seeds!r}")
        repeat = RepeatBestSpec(
            among=w.labels(r.get("among"), "report.repeat_best.among"),
            with_=w.labels(r.get("with", []), "report.repeat_best.with"),
            seeds=seeds,
        )
    pairs = _label_pairs(w, raw.get("compare", []), "report.compare")
    equivalence = None
    if "equivalence" in raw:
        e = w.keys(raw["equivalence"], _EQUIVALENCE, "report.equivalence")
        margin = e.get("margin")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
            raise w.error("report.equivalence.margin", f"expected a number > 0, found {margin!r}")
        alpha = e.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
            raise w.error(
                "report.equivalence.alpha",
                f"expected a number above 0 and below 0.5, found {alpha!r}",
            )
        equivalence = EquivalenceSpec(
            pairs=_label_pairs(w, e.get("pairs"), "report.equivalence.pairs"),
            margin=float(margin),
            alpha=float(alpha),
        )
    matrix = None
    if "matrix" in raw:
        m = w.keys(raw["matrix"], _MATRIX, "report.matrix")
        for k in ("rows", "columns"):
            if k not in m:
                raise w.error(f"report.matrix.{k}", "missing required key")
        compare = m.get("compare", "both")
        if compare not in ("both", "rows", "columns"):
            raise w.error(
                "report.matrix.compare", f"expected both, rows or columns, found {compare!r}"
            )
        matrix = MatrixSpec(
            rows=w.text(m["rows"], "report.matrix.rows"),
            columns=w.text(m["columns"], "report.matrix.columns"),
            baseline=None if m.get("baseline") is None else str(m["baseline"]),
            compare=compare,
            ranks=w.flag(m.get("ranks", False), "report.matrix.ranks"),
            best_pair=w.flag(m.get("best_pair", True), "report.matrix.best_pair"),
        )
    return ReportSpec(
        kind=kind,
        param=None if raw.get("param") is None else w.text(raw["param"], "report.param"),
        x_label=None if raw.get("x_label") is None else str(raw["x_label"]),
        paper_best=raw.get("paper_best"),
        baseline=w.text(raw.get("baseline", "DNN"), "report.baseline"),
        repeat_best=repeat,
        compare=pairs,
        matrix=matrix,
        equivalence=equivalence,
    )


def _label_pairs(w: _Where, pairs: Any, key: str) -> tuple[tuple[str, str], ...]:
    if (
        not isinstance(pairs, list)
        or not pairs
        and key != "report.compare"
        or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs
        )
    ):
        raise w.error(key, f"expected pairs of cell labels, found {pairs!r}")
    return tuple((p[0], p[1]) for p in pairs)
