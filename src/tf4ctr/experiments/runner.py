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
import functools
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tf4ctr.config import apply_overrides, parse_run_config
from tf4ctr.errors import ConfigError
from tf4ctr.experiments.keys import config_key, record_config
from tf4ctr.experiments.spec import ReportSpec, parse_experiment
from tf4ctr.experiments.store import ResultStore, summarize_run
from tf4ctr.fileio import read_yaml
from tf4ctr.models import check_model_config
from tf4ctr.progress import show_bars
from tf4ctr.rundir import RunLockedError, RunPaths

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
    #: how ``tf4ctr report`` presents the results (see tf4ctr.experiments.reports)
    report: ReportSpec = field(default_factory=ReportSpec)
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
        spec = self.report.repeat_best
        among = list(spec.among) if spec else []
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
        spec = self.report.repeat_best
        best = self.best_baseline(store)
        if spec is None or best is None:
            return []
        seeds = DEFAULT_SEEDS[: spec.seeds]
        known = {c.key for c in self.cells}
        extra = []
        for label in [best, *spec.with_]:
            raw, reference = self.templates[label]
            for seed in seeds:
                cell = _seeded_cell(label, seed, raw, reference, self.source)
                if cell.key not in known:
                    known.add(cell.key)
                    extra.append(cell)
        self.repeat_keys.extend(c.key for c in extra)
        return extra


@functools.lru_cache(maxsize=1)
def _source_commit() -> str | None:
    """The git commit of the tf4ctr source that runs (``+dirty`` when src/ has edits), or
    None outside a git checkout (an installed wheel)."""
    src = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip

    try:
        # only tf4ctr's own checkout (src/ layout), not some repository that happens to
        # hold the site-packages tf4ctr is installed in
        if src.name != "src" or Path(git("rev-parse", "--show-toplevel")) != src.parent:
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def software() -> dict[str, Any]:
    """What produced a record, beside its config: a key names the config, not the code, and
    the same config trained by another version of the code (or another thread count) need not
    give the same digits, so a record reused from an older store says where it came from."""
    import torch

    from tf4ctr import __version__

    return {
        "tf4ctr": __version__,
        "commit": _source_commit(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


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


def _read_base(path: Path) -> dict[str, Any]:
    base = read_yaml(path)
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if isinstance(base.get("dataset"), str):  # make it independent of the base file's folder
        base["dataset"] = str((path.parent / base["dataset"]).resolve())
    return base


def load_experiment(path: str | Path, *, seeds: int | None = None) -> Experiment:
    """Read an experiment file (:func:`parse_experiment`) and resolve every cell x seed.

    A cell may set its own ``seeds`` (Table IV repeats only TF4CTR and the
    best baseline). ``seeds=N`` runs every cell with the first N seeds of
    :data:`DEFAULT_SEEDS` instead.
    """
    if seeds is not None and not 1 <= seeds <= len(DEFAULT_SEEDS):
        raise ConfigError(f"--seeds: expected 1 to {len(DEFAULT_SEEDS)}, got {seeds}")
    path = Path(path).resolve()
    spec = parse_experiment(path, read_yaml(path))
    base = _read_base(spec.base)
    default_seeds = spec.seeds or (base.get("train", {}).get("seed", 2023),)
    cells: list[Cell] = []
    templates: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    seen: set[str] = set()
    for i, cs in enumerate(spec.cells, start=1):
        cell_seeds = DEFAULT_SEEDS[:seeds] if seeds is not None else cs.seeds or default_seeds
        cell_raw = copy.deepcopy(base)
        if cs.model is not None:
            cell_raw["model"] = copy.deepcopy(cs.model)
        overrides = [f"{k}={json.dumps(v)}" for k, v in cs.overrides.items()]
        try:
            cell_raw = apply_overrides(cell_raw, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: cells[{i}] ({cs.label}): {exc}") from None
        templates[cs.label] = (cell_raw, cs.reference)
        for seed in cell_seeds:
            try:  # validate now, so a typo fails before hours of training
                cell = _seeded_cell(cs.label, seed, cell_raw, cs.reference, path)
            except ConfigError as exc:
                raise ConfigError(f"cells[{i}] ({cs.label}): {exc}") from None
            if cell.key in seen:
                raise ConfigError(f"{path}: cells[{i}] ({cs.label}): duplicates an earlier cell")
            seen.add(cell.key)
            cells.append(cell)
    # Paths given in the file are relative to the file; the defaults live in the current folder.
    root = Path.cwd()
    return Experiment(
        spec.name,
        cells,
        spec.store or root / ".tf4ctr-results" / f"{spec.name}.jsonl",
        spec.runs_dir or root / "runs" / spec.name,
        path,
        spec.description,
        reuse=list(spec.reuse),
        report=spec.report,
        templates=templates,
    )


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
            # relative to this store's folder: no path of the checkout that ran it
            record["reused_from"] = Path(
                os.path.relpath(path, experiment.store_path.parent)
            ).as_posix()
            if dry_run:
                store.records[key] = record
            else:
                store.add(record)


def add_repeat_cells(experiment: Experiment, store: ResultStore, *, dry_run: bool) -> list[Cell]:
    """Add the repeat cells the stored results now call for, copying those another store
    already ran (the extra seeds of a ``with`` cell are often another experiment's seeds)."""
    extra = experiment.repeat_cells(store)
    experiment.cells.extend(extra)
    if extra:
        copy_reused(experiment, store, dry_run=dry_run)
    return extra


def known_results(experiment: Experiment) -> ResultStore:
    """The experiment's store, plus (in memory) the cells other stores already ran,
    repeat cells included."""
    store = ResultStore(experiment.store_path)
    copy_reused(experiment, store, dry_run=True)
    while add_repeat_cells(experiment, store, dry_run=True):
        pass
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

    labels = list(dict.fromkeys(c.label for c in experiment.cells))
    unknown = [label for label in only or [] if label not in labels]
    if unknown:
        raise ConfigError(
            f"--only: {', '.join(repr(u) for u in unknown)}: no such cell label in "
            f"{experiment.source} (labels: {', '.join(labels)})"
        )
    store = ResultStore(experiment.store_path)
    copy_reused(experiment, store, dry_run=dry_run)
    todo = [c for c in experiment.cells if c.key not in store and (not only or c.label in only)]
    done_before = len(experiment.cells) - len(todo)
    if dry_run:
        for c in experiment.cells:
            if not only or c.label in only:
                print(f"{'done' if c.key in store else 'todo'}  {c.key}  {c.label} (seed {c.seed})")
        return store
    bar = tqdm(
        total=len(experiment.cells),
        initial=done_before,
        desc=experiment.name,
        unit="cell",
        disable=not show_bars(progress),
        dynamic_ncols=True,
    )

    def refill() -> list[Cell]:
        store.refresh()
        if only or not (extra := add_repeat_cells(experiment, store, dry_run=False)):
            return []
        pending = [c for c in extra if c.key not in store]
        bar.total += len(extra)
        bar.update(len(extra) - len(pending))
        return pending

    queue = list(todo) or refill()
    skipped = 0
    while queue:
        cell = queue.pop(0)
        store.refresh()
        if cell.key in store:  # another grid process finished it meanwhile
            bar.update(1)
            if not queue:
                queue = refill()
            continue
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
        try:
            result = run.train(
                config, run_dir=run_dir, overwrite=True, resume=resume, progress=False
            )
        except RunLockedError as exc:
            # another grid (one per core) is training this very cell: leave it to that one
            bar.write(f"{cell.label} (seed {cell.seed}): skipped, {exc}")
            skipped += 1
            if not queue:
                queue = refill()
            continue
        record = {
            "key": cell.key,
            "experiment": experiment.name,
            "label": cell.label,
            "seed": cell.seed,
            "model": config.model_name,
            "loss": config.loss.name,
            "config": record_config(cell.raw_config, experiment.source),
            # relative to the runs folder: a record names no path of the checkout that ran it
            "run_dir": result.run_dir.relative_to(experiment.runs_dir.parent).as_posix(),
            "wall_seconds": time.perf_counter() - start,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "software": software(),
            **summarize_run(result.metrics),
        }
        store.add(record)
        bar.update(1)
        if not queue:
            queue = refill()
    bar.close()
    if skipped:
        print(
            f"{experiment.name}: {skipped} cell(s) were being trained by another process; "
            "rerun to collect them once it is done"
        )
    return store
