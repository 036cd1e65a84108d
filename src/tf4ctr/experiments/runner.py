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
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tf4ctr.config import apply_overrides, parse_run_config, read_yaml
from tf4ctr.errors import ConfigError
from tf4ctr.models import check_model_config

_EXPERIMENT_KEYS = ("name", "base", "seeds", "cells", "store", "runs_dir", "description")


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


def config_key(raw: dict[str, Any]) -> str:
    """Hash of everything that can change a result (names and output places left out)."""
    relevant = {k: v for k, v in raw.items() if k not in ("name", "output_dir", "cache_dir")}
    relevant["train"] = {k: v for k, v in relevant.get("train", {}).items() if k != "progress"}
    blob = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower())
    return "-".join(filter(None, keep.split("-")))[:60]


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment file and resolve every cell × seed into a run config."""
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
    seeds = raw.get("seeds", [base.get("train", {}).get("seed", 2023)])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path}: seeds: expected a list of integers")
    if not isinstance(raw["cells"], list) or not raw["cells"]:
        raise ConfigError(f"{path}: cells: expected a non-empty list")
    name = str(raw["name"])
    cells: list[Cell] = []
    seen: set[str] = set()
    for i, spec in enumerate(raw["cells"], start=1):
        if not isinstance(spec, dict) or "label" not in spec:
            raise ConfigError(f"{path}: cells[{i}]: expected a mapping with a 'label'")
        spec = dict(spec)
        label = str(spec.pop("label"))
        reference = spec.pop("reference", None)  # published numbers to print beside ours
        cell_raw = copy.deepcopy(base)
        if "model" in spec:
            cell_raw["model"] = spec.pop("model")
        overrides = [f"{k}={json.dumps(v)}" for k, v in spec.items()]
        try:
            cell_raw = apply_overrides(cell_raw, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: cells[{i}] ({label}): {exc}") from None
        for seed in seeds:
            seeded = copy.deepcopy(cell_raw)
            seeded.setdefault("train", {})["seed"] = seed
            seeded["name"] = f"{_slug(label)}-s{seed}"
            try:  # validate now, so a typo fails before hours of training
                parsed = parse_run_config(seeded, source=path)
                check_model_config(parsed.model_name, parsed.model_hparams)
            except ConfigError as exc:
                raise ConfigError(f"cells[{i}] ({label}): {exc}") from None
            key = config_key(seeded)
            if key in seen:
                raise ConfigError(f"{path}: cells[{i}] ({label}): duplicates an earlier cell")
            seen.add(key)
            cells.append(Cell(label, seed, seeded, key, reference))
    # Paths given in the file are relative to the file; the defaults live in the current folder.
    root = Path.cwd()
    store = (
        path.parent / raw["store"] if "store" in raw else root / ".tf4ctr-results" / f"{name}.jsonl"
    )
    runs_dir = path.parent / raw["runs_dir"] if "runs_dir" in raw else root / "runs" / name
    return Experiment(name, cells, store, runs_dir, path, str(raw.get("description", "")))


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
                    self.records[rec["key"]] = rec

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
        self.records[record["key"]] = record


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
    for cell in todo:
        bar.set_postfix_str(f"{cell.label} seed {cell.seed}")
        raw = copy.deepcopy(cell.raw_config)
        raw["output_dir"] = str(experiment.runs_dir)
        config = parse_run_config(raw, source=experiment.source)
        start = time.perf_counter()
        result = run.train(
            config,
            run_dir=experiment.runs_dir / f"{cell.raw_config['name']}-{cell.key}",
            overwrite=True,
            progress=False,
        )
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
    bar.close()
    return store
