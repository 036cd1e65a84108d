"""A resumable grid of runs.

An experiment file names a base run config and a list of cells; each cell is a
set of overrides on the base (``model`` given as a mapping replaces the base's
model section wholesale, since hyperparameter names differ between models).
Every cell × seed is resolved to a full run config and keyed by a hash of it;
its result is appended to a JSON-lines store as soon as it finishes, and a
cell whose key is already in the store is skipped. An interrupted study
resumes where it stopped, and editing one cell reruns only that cell.

```yaml
name: frappe_zoo
base: ../frappe_x1/dualmlp.yaml
seeds: [2023]
cells:
  - {label: DNN, model: {name: dnn}}
  - {label: DeepFM + TF, model: {name: deepfm}, loss.name: tf, reference: {test_auc: 0.9848}}
```
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tf4ctr.config import LossConfig, TrainConfig, apply_overrides, parse_run_config, read_yaml
from tf4ctr.errors import ConfigError, UserError
from tf4ctr.models import check_model_config, model_defaults
from tf4ctr.models.registry import canonical_name
from tf4ctr.rundir import RunPaths

_EXPERIMENT_KEYS = (
    "name", "base", "seeds", "cells", "store", "runs_dir", "description", "reuse", "report",
)  # fmt: skip
#: the seeds ``--seeds N`` picks from, in order (the paper's code starts at 2023)
DEFAULT_SEEDS = tuple(range(2023, 2043))


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a label, a seed and its fully resolved run config."""

    label: str
    seed: int
    raw_config: dict[str, Any]
    key: str
    reference: dict[str, Any] | None = None


@dataclass
class Experiment:
    name: str
    cells: list[Cell]
    store_path: Path
    runs_dir: Path
    source: Path
    description: str = ""
    #: other stores whose finished cells (same config key) are copied instead of rerun
    reuse: list[Path] = field(default_factory=list)
    #: how ``tf4ctr report`` presents the results (see tf4ctr.experiments.report)
    report: dict[str, Any] = field(default_factory=dict)
    #: keys of the cells ``repeat_cells`` added (not part of the grid as written)
    repeat_keys: list[str] = field(default_factory=list)
    #: each label's resolved config before seeding, and its reference numbers
    templates: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = field(default_factory=dict)

    def add_repeats(self, store: ResultStore) -> None:
        """Add the repeat cells the stored results call for (for reports), until none are new."""
        while extra := self.repeat_cells(store):
            self.cells.extend(extra)

    def best_baseline(self, store: ResultStore) -> str | None:
        """The label among ``report.repeat_best.among`` with the highest VALIDATION AUC (a
        choice made on test would inflate the comparison it feeds), judged on the grid's own
        seeds only; None until every candidate has a result. Repeat seeds never change the
        choice, so the runner and the report agree on it however many seeds are stored."""
        spec = self.report.get("repeat_best")
        among = [str(x) for x in spec.get("among", [])] if spec else []
        repeats = set(self.repeat_keys)
        done = {
            label: [
                store.records[c.key]["valid"]["auc"]
                for c in self.cells
                if c.label == label and c.key in store and c.key not in repeats
            ]
            for label in among
        }
        if not among or any(not v for v in done.values()):
            return None
        return max(among, key=lambda label: sum(done[label]) / len(done[label]))

    def repeat_cells(self, store: ResultStore) -> list[Cell]:
        """Extra seeds for the best cell among ``report.repeat_best.among`` and for the
        cells in ``with`` (Table IV: five runs of TF4CTR and of the best baseline)."""
        spec = self.report.get("repeat_best")
        best = self.best_baseline(store)
        if not spec or best is None:
            return []
        seeds = DEFAULT_SEEDS[: int(spec.get("seeds", 5))]
        known = {c.key for c in self.cells}
        extra = []
        for label in [best, *[str(x) for x in spec.get("with", [])]]:
            raw, reference = self.templates[label]
            for seed in seeds:
                cell = _seeded_cell(label, seed, raw, reference, self.source)
                if cell.key not in known:
                    known.add(cell.key)
                    extra.append(cell)
        self.repeat_keys.extend(c.key for c in extra)
        return extra


_NOT_RESULTS = ("progress", "num_threads", "eval_batch_size")  # train keys that change no result
_MISSING = object()


def _plain(value: Any) -> Any:
    """JSON-normal form, so (400, 400) from a signature equals [400, 400] from YAML."""
    return json.loads(json.dumps(value, default=str))


@functools.lru_cache(maxsize=64)
def _dataset_identity(dataset: str, base: str) -> str:
    """A dataset by what it is, not where it lies: its config without file locations,
    plus each split's file name. The same study keys alike in any checkout."""
    from tf4ctr.data import load_dataset_config

    source: Any = json.loads(dataset) if dataset.startswith("{") else Path(dataset)
    config = load_dataset_config(source, base_dir=Path(base))
    described = config.to_dict()
    for split in ("train", "valid", "test"):
        described[f"{split}_data"] = Path(described[f"{split}_data"]).name
    described.pop("source", None)
    return json.dumps(described, sort_keys=True, default=str)


def canonical_config(raw: dict[str, Any], source: Path | None = None) -> dict[str, Any]:
    """Everything that can change a run's result, with defaults left out: a config that
    spells out a default and one that omits it are the same run."""
    parsed = parse_run_config(raw, source=source)
    model_default = _plain(model_defaults(parsed.model_name))
    model = {
        k: v for k, v in _plain(parsed.model_hparams).items() if model_default.get(k, _MISSING) != v
    }
    loss_default = _plain(dataclasses.asdict(LossConfig()))
    loss = {
        k: v for k, v in _plain(dataclasses.asdict(parsed.loss)).items() if loss_default[k] != v
    }
    train_default = _plain(dataclasses.asdict(TrainConfig()))
    train = {
        k: v
        for k, v in _plain(dataclasses.asdict(parsed.train)).items()
        if k not in _NOT_RESULTS and train_default[k] != v
    }
    dataset = parsed.dataset
    text = json.dumps(dataset, sort_keys=True) if isinstance(dataset, dict) else str(dataset)
    base = str(source.parent if source is not None else Path.cwd())
    return {
        "model": canonical_name(parsed.model_name),
        "model_hparams": model,
        "loss": loss,
        "train": train,
        "dataset": _dataset_identity(text, base),
    }


def config_key(raw: dict[str, Any], source: Path | None = None) -> str:
    """Hash of :func:`canonical_config`: names, output places and defaults left out."""
    blob = json.dumps(canonical_config(raw, source), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _legacy_key(raw: dict[str, Any]) -> str:
    """The key stores written before canonical keys used (kept so they still load)."""
    relevant = {k: v for k, v in raw.items() if k not in ("name", "output_dir", "cache_dir")}
    relevant["train"] = {k: v for k, v in relevant.get("train", {}).items() if k != "progress"}
    blob = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _seeded_cell(
    label: str, seed: int, raw: dict[str, Any], reference: dict[str, Any] | None, source: Path
) -> Cell:
    seeded = copy.deepcopy(raw)
    seeded.setdefault("train", {})["seed"] = seed
    seeded["name"] = f"{_slug(label)}-s{seed}"
    parsed = parse_run_config(seeded, source=source)
    check_model_config(parsed.model_name, parsed.model_hparams)
    return Cell(label, seed, seeded, config_key(seeded, source), reference)


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower())
    return "-".join(filter(None, keep.split("-")))[:60]


def _seed_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) for s in value):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers")
    return value


def load_experiment(path: str | Path, *, seeds: int | None = None) -> Experiment:
    """Read an experiment file and resolve every cell × seed into a run config.

    A cell may set its own ``seeds`` (Table IV repeats only TF4CTR and the
    best baseline). ``seeds=N`` runs every cell with the first N seeds of
    :data:`DEFAULT_SEEDS` instead.
    """
    if seeds is not None and not 1 <= seeds <= len(DEFAULT_SEEDS):
        raise ConfigError(f"--seeds: expected 1 to {len(DEFAULT_SEEDS)}, got {seeds}")
    path = Path(path).resolve()
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for k in raw:
        if k not in _EXPERIMENT_KEYS:
            raise ConfigError(
                f"{path}: {k}: unknown key (expected one of: {', '.join(_EXPERIMENT_KEYS)})"
            )
    for k in ("name", "base", "cells"):
        if k not in raw:
            raise ConfigError(f"{path}: {k}: missing required key")
    base_path = (path.parent / str(raw["base"])).resolve()
    base = read_yaml(base_path)
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: expected a mapping at the top level")
    if isinstance(base.get("dataset"), str):  # make it independent of the base file's folder
        base["dataset"] = str((base_path.parent / base["dataset"]).resolve())
    default_seeds = _seed_list(
        raw.get("seeds", [base.get("train", {}).get("seed", 2023)]), str(path)
    )
    if not isinstance(raw["cells"], list) or not raw["cells"]:
        raise ConfigError(f"{path}: cells: expected a non-empty list")
    name = str(raw["name"])
    cells: list[Cell] = []
    templates: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    seen: set[str] = set()
    for i, spec in enumerate(raw["cells"], start=1):
        if not isinstance(spec, dict) or "label" not in spec:
            raise ConfigError(f"{path}: cells[{i}]: expected a mapping with a 'label'")
        spec = dict(spec)
        label = str(spec.pop("label"))
        reference = spec.pop("reference", None)  # published numbers to print beside ours
        cell_seeds = (
            list(DEFAULT_SEEDS[:seeds])
            if seeds is not None
            else _seed_list(spec.pop("seeds"), f"{path}: cells[{i}] ({label})")
            if "seeds" in spec
            else default_seeds
        )
        spec.pop("seeds", None)
        cell_raw = copy.deepcopy(base)
        if "model" in spec:
            cell_raw["model"] = spec.pop("model")
        overrides = [f"{k}={json.dumps(v)}" for k, v in spec.items()]
        try:
            cell_raw = apply_overrides(cell_raw, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: cells[{i}] ({label}): {exc}") from None
        templates[label] = (cell_raw, reference)
        for seed in cell_seeds:
            try:  # validate now, so a typo fails before hours of training
                cell = _seeded_cell(label, seed, cell_raw, reference, path)
            except ConfigError as exc:
                raise ConfigError(f"cells[{i}] ({label}): {exc}") from None
            if cell.key in seen:
                raise ConfigError(f"{path}: cells[{i}] ({label}): duplicates an earlier cell")
            seen.add(cell.key)
            cells.append(cell)
    # Paths given in the file are relative to the file; the defaults live in the current folder.
    root = Path.cwd()
    store = (
        path.parent / raw["store"] if "store" in raw else root / ".tf4ctr-results" / f"{name}.jsonl"
    )
    runs_dir = path.parent / raw["runs_dir"] if "runs_dir" in raw else root / "runs" / name
    reuse = raw.get("reuse", [])
    if not isinstance(reuse, list) or not all(isinstance(r, str) for r in reuse):
        raise ConfigError(f"{path}: reuse: expected a list of result-store paths")
    report = raw.get("report", {})
    if not isinstance(report, dict):
        raise ConfigError(f"{path}: report: expected a mapping")
    return Experiment(
        name,
        cells,
        store,
        runs_dir,
        path,
        str(raw.get("description", "")),
        reuse=[(path.parent / r).resolve() for r in reuse],
        report=report,
        templates=templates,
    )


def _record_key(record: dict[str, Any]) -> str:
    """A stored record's key, recomputed from its config (older stores hashed the raw
    config, location included); the stored key when the config cannot be read here."""
    config = record.get("config")
    if isinstance(config, dict):
        try:
            return config_key(config)
        except (UserError, KeyError, TypeError, ValueError):
            pass
    return str(record["key"])


@dataclass
class ResultStore:
    """Append-only JSON lines, one finished cell per line.

    A line is written whole with one ``write`` and flushed to disk; a torn last
    line (the process killed mid-write) fails to parse and is ignored, so the
    cell simply runs again.
    """

    path: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "key" in rec:
                    self.records[_record_key(rec)] = rec

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, default=str) + "\n"
        with self.path.open("a+b") as fh:
            # a torn last line must not swallow this record
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.records[_record_key(record)] = record


def summarize_run(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's metrics.json that reports need."""
    epochs = metrics["epochs"]
    train_seconds = [e["train_seconds"] for e in epochs]
    summary = {
        "valid": metrics["valid"],
        "test": metrics["test"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": len(epochs),
        "first_epoch_seconds": train_seconds[0] if train_seconds else None,
        "seconds_per_epoch": sorted(train_seconds)[len(train_seconds) // 2]
        if train_seconds
        else None,
        "test_seconds": metrics["test"].get("seconds"),
        "parameters": metrics["parameters"],
        "valid_seconds": metrics["valid"].get("seconds"),
        "history": [
            {
                "epoch": e["epoch"],
                "valid": e["valid"],
                "train_loss": e.get("train_total_loss"),
                **({"difficulty": e["difficulty"]} if "difficulty" in e else {}),
            }
            for e in epochs
        ],
    }
    if epochs and "logit_grad_norms" in epochs[0]:
        summary["logit_grad_norms"] = epochs[0]["logit_grad_norms"]
    return summary


def copy_reused(experiment: Experiment, store: ResultStore, *, dry_run: bool) -> None:
    """Copy cells another experiment already ran with the very same config (same key).

    With ``dry_run`` the copies are made in memory only (for reports and ``--dry-run``).
    """
    wanted = {c.key: c for c in experiment.cells if c.key not in store}
    for path in experiment.reuse:
        if not wanted:
            return
        other = ResultStore(path)
        for key in [k for k in wanted if k in other]:
            cell = wanted.pop(key)
            record = dict(other.records[key], label=cell.label, experiment=experiment.name)
            record["reused_from"] = str(path)
            if dry_run:
                store.records[key] = record
            else:
                store.add(record)


def known_results(experiment: Experiment) -> ResultStore:
    """The experiment's store, plus (in memory) the cells other stores already ran."""
    store = ResultStore(experiment.store_path)
    copy_reused(experiment, store, dry_run=True)
    return store


def run_experiment(
    experiment: Experiment,
    *,
    only: list[str] | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> ResultStore:
    """Run every cell not yet in the store; returns the store with all results."""
    from tf4ctr import run  # heavy import, not needed to load an experiment

    store = ResultStore(experiment.store_path)
    copy_reused(experiment, store, dry_run=dry_run)
    todo = [c for c in experiment.cells if c.key not in store and (not only or c.label in only)]
    done_before = len(experiment.cells) - len(todo)
    if dry_run:
        for c in experiment.cells:
            print(f"{'done' if c.key in store else 'todo'}  {c.key}  {c.label} (seed {c.seed})")
        return store
    bar = tqdm(
        total=len(experiment.cells),
        initial=done_before,
        desc=experiment.name,
        unit="cell",
        disable=not progress,
        dynamic_ncols=True,
    )

    def refill() -> list[Cell]:
        if only or not (extra := experiment.repeat_cells(store)):
            return []
        experiment.cells.extend(extra)
        pending = [c for c in extra if c.key not in store]
        bar.total += len(extra)
        bar.update(len(extra) - len(pending))
        return pending

    queue = list(todo) or refill()
    while queue:
        cell = queue.pop(0)
        bar.set_postfix_str(f"{cell.label} seed {cell.seed}")
        raw = copy.deepcopy(cell.raw_config)
        raw["output_dir"] = str(experiment.runs_dir)
        config = parse_run_config(raw, source=experiment.source)
        start = time.perf_counter()
        run_dir = experiment.runs_dir / f"{cell.raw_config['name']}-{cell.key}"
        # A cell interrupted after some epochs continues from its checkpoint; the cell's
        # key pins its config, so the resumed run is the same run.
        resume = RunPaths.for_run_dir(run_dir).latest_checkpoint() is not None
        if resume:
            bar.write(f"{cell.label} (seed {cell.seed}): resuming its interrupted run")
        result = run.train(config, run_dir=run_dir, overwrite=True, resume=resume, progress=False)
        record = {
            "key": cell.key,
            "experiment": experiment.name,
            "label": cell.label,
            "seed": cell.seed,
            "model": config.model_name,
            "loss": config.loss.name,
            "config": cell.raw_config,
            "run_dir": str(result.run_dir),
            "wall_seconds": time.perf_counter() - start,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **summarize_run(result.metrics),
        }
        store.add(record)
        bar.update(1)
        if not queue:
            queue = refill()
    bar.close()
    return store
