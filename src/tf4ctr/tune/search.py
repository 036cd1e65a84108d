"""``tf4ctr tune``: a FuxiCTR grid, or an Optuna search whose trials are ordinary grid cells.

Every trial is a cell of :mod:`tf4ctr.experiments`: its config keyed like any grid's, its
result appended to a result store and its run resumable. So a trial whose config another
experiment (or an earlier trial) already trained is answered from the store, and none is
trained twice. The study lives in a SQLite file (Optuna's RDB storage): a tune killed at any
moment, even by SIGKILL, and started again continues it, and several processes started on the
same file share it, each asking the study for its own next trial.

The budget is ``n_trials`` trials that ended (finished or pruned), counted over every process.
A trial whose process died stops sending Optuna's heartbeat; once it is stale, the next process
to look marks it failed and enqueues its settings again, and the trial that takes them resumes
the dead one's run from its last checkpoint (the same config, so the same run folder).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf4ctr.config import parse_run_config
from tf4ctr.errors import ConfigError, UserError
from tf4ctr.experiments.keys import config_key
from tf4ctr.experiments.runner import DEFAULT_SEEDS, Cell, Experiment, run_experiment
from tf4ctr.experiments.spec import RepeatBestSpec, ReportSpec
from tf4ctr.experiments.store import ResultStore
from tf4ctr.fileio import make_dir, read_yaml
from tf4ctr.models import check_model_config
from tf4ctr.tune import fuxictr
from tf4ctr.tune.spec import SearchSpec, apply_params, base_params, parse_search

__all__ = ["GridTune", "SearchTune", "load_tuner", "run_grid", "run_search"]

log = logging.getLogger("tf4ctr")

#: the labels of a search's cells: its trials, and the closing seeds of the best and the start
TRIAL, TUNED, START = "trial", "tuned", "start"


@dataclass
class SearchTune:
    spec: SearchSpec
    store: Path
    study_file: Path
    runs_dir: Path


@dataclass
class GridTune:
    """A FuxiCTR tuner file: the grid as an experiment, best on validation re-run on seeds."""

    experiment: Experiment
    expids: list[str] = field(default_factory=list)


def _home(path: Path) -> Path:
    """The folder beside a tuner file that holds what it makes, named after it (FuxiCTR
    writes its expanded configs to the same place)."""
    return path.parent / path.stem


def _read_base(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: base run config not found")
    base = read_yaml(path)
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if isinstance(base.get("dataset"), str):
        base["dataset"] = str((path.parent / base["dataset"]).resolve())
    return base


def make_cell(label: str, seed: int, raw: dict[str, Any], source: Path) -> Cell:
    """A grid cell for ``raw`` at ``seed``, checked as a run would be; its name, and so its
    run folder ``<name>-<key>``, follows from the label, seed and config alone."""
    seeded = copy.deepcopy(raw)
    seeded.setdefault("train", {})["seed"] = seed
    seeded["name"] = f"{label}-s{seed}"
    parsed = parse_run_config(seeded, source=source)
    check_model_config(parsed.model_name, parsed.model_hparams)
    return Cell(label, seed, seeded, config_key(seeded, source))


def load_tuner(path: str | Path, *, seeds: int | None = None) -> SearchTune | GridTune:
    """Read and check a tuner file, FuxiCTR's (``tuner_space``) or a search (``space``):
    every error is one line naming the file and key, before anything trains."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: tuner file not found")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if seeds is not None and not 0 <= seeds <= len(DEFAULT_SEEDS):
        raise ConfigError(f"--seeds: expected 0 to {len(DEFAULT_SEEDS)}, got {seeds}")
    if "tuner_space" in raw:
        return _load_grid(path, raw, 5 if seeds is None else seeds)
    if "space" not in raw:
        raise ConfigError(f"{path}: expected tuner_space (FuxiCTR's grid) or space (a search)")
    spec = parse_search(path, raw, _read_base)
    if seeds is not None:
        spec = dataclasses.replace(spec, seeds=seeds)
    home = _home(path)
    return SearchTune(
        spec,
        store=spec.store or home / "results.jsonl",
        study_file=spec.study or home / "study.db",
        runs_dir=spec.runs_dir or home / "runs",
    )


def _load_grid(path: Path, raw: dict[str, Any], seeds: int) -> GridTune:
    grid = fuxictr.expand_tuner(path, raw)
    cells, templates = [], {}
    for expid, params in grid.items():
        run = fuxictr.to_run_config(path, expid, params)
        try:
            cell = make_cell(expid, int(run["train"].get("seed", 2023)), run, path)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {expid}: {exc}") from None
        cells.append(cell)
        templates[expid] = (run, None)
    home = _home(path)
    report = ReportSpec(
        repeat_best=RepeatBestSpec(among=tuple(grid), seeds=seeds) if seeds >= 2 else None
    )
    experiment = Experiment(path.stem, cells, home / "results.jsonl", home / "runs", path,
                            report=report, templates=templates)  # fmt: skip
    return GridTune(experiment, list(grid))


def run_grid(tune: GridTune, *, dry_run: bool = False, progress: bool = True) -> ResultStore:
    """Every FuxiCTR experiment of the grid, then the best on validation over the seeds."""
    return run_experiment(tune.experiment, dry_run=dry_run, progress=progress)


# -- the search ---------------------------------------------------------------------------


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError("a search needs Optuna: pip install 'tf4ctr[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(tune: SearchTune, *, create: bool = True) -> Any:
    """The tune's Optuna study in its SQLite file, with heartbeats so a dead process's trial
    is noticed, and the sampler and pruner the file names."""
    optuna = _optuna()
    spec = tune.spec
    if not create and not tune.study_file.is_file():
        raise UserError(f"{tune.study_file}: no study yet (run `tf4ctr tune {spec.path}` first)")
    make_dir(tune.study_file.parent, "the study's folder")
    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(3)}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=3)}
    # Two processes creating the study's tables at once collide: one at a time, then shared
    with _exclusive(tune.study_file.with_name(tune.study_file.name + ".lock")):
        storage = storages.RDBStorage(
            f"sqlite:///{tune.study_file}",
            engine_kwargs={"connect_args": {"timeout": 120}},
            heartbeat_interval=spec.heartbeat_seconds,
            grace_period=2 * spec.heartbeat_seconds,
            **retry,
        )
        study = _create(optuna, tune, storage)
        if create:  # under the lock: the first process alone enqueues the base
            _start_with_base(study, tune)
    return study


@contextlib.contextmanager
def _exclusive(path: Path) -> Any:
    """An OS lock on ``path`` held for the block (released by the OS if the process dies)."""
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _create(optuna: Any, tune: SearchTune, storage: Any) -> Any:
    spec = tune.spec
    seed = spec.sampler_seed
    if seed is not None:  # one seed per process: two processes must not draw alike
        seed = (seed * 1_000_003 + os.getpid()) % 2**31
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if spec.sampler == "random"
        else optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                        n_startup_trials=min(10, max(1, spec.n_trials // 3)))
    )  # fmt: skip
    pruner = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "halving": optuna.pruners.SuccessiveHalvingPruner(),
        "none": optuna.pruners.NopPruner(),
    }[spec.pruner]
    return optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler,
                               pruner=pruner, direction="maximize", load_if_exists=True)  # fmt: skip


def _counts(study: Any) -> tuple[int, int, int]:
    """(trials that ended, trials running, trials waiting)."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    ended = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
    return ended, states.count(TrialState.RUNNING), states.count(TrialState.WAITING)


class _OverBudget(Exception):
    """Another process's trial took the last place in the budget first."""


def _monitor(tune: SearchTune) -> str:
    return parse_run_config(tune.spec.base_raw, source=tune.spec.path).train.monitor


def trial_experiment(tune: SearchTune, cells: list[Cell]) -> Experiment:
    return Experiment(tune.spec.name, cells, tune.store, tune.runs_dir, tune.spec.path,
                      tune.spec.description, reuse=list(tune.spec.reuse))  # fmt: skip


def _objective(tune: SearchTune, monitor: str, trained: list[int]) -> Any:
    optuna = _optuna()
    from optuna.trial import TrialState

    from tf4ctr.run.record import add_after_epoch
    from tf4ctr.train.trainer import TrainingDiverged, monitor_value

    spec = tune.spec
    base_seed = int(spec.base_raw.get("train", {}).get("seed", 2023))

    def objective(trial: Any) -> float:
        before = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
        taken = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
                    for t in before)  # fmt: skip
        if taken >= spec.n_trials:
            raise _OverBudget()
        params = {dim.key: dim.suggest(trial) for dim in spec.space}
        cell = make_cell(TRIAL, base_seed, apply_params(spec.base_raw, params), spec.path)
        trial.set_user_attr("key", cell.key)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        experiment = trial_experiment(tune, [cell])

        def report(record: dict[str, Any], _metrics: dict[str, Any]) -> None:
            trial.report(monitor_value(record["valid"], monitor), int(record["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

        known = ResultStore(tune.store)
        reused = cell.key in known
        remove = add_after_epoch(report)
        try:
            while True:
                store = run_experiment(experiment, progress=False)
                if cell.key in store:
                    break
                # another process trains this very config now: its record will answer
                time.sleep(min(spec.heartbeat_seconds, 5))
        except TrainingDiverged as exc:
            # a setting that diverges is an answer, not a fault: it ends the trial, and counts
            trial.set_user_attr("diverged", str(exc).splitlines()[0])
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        finally:
            remove()
        record = store.records[cell.key]
        reused = reused or "reused_from" in record
        trial.set_user_attr("reused", reused)
        if reused:  # the pruner compares curves: give it this one's
            for epoch in record.get("history") or ():
                trial.report(monitor_value(epoch["valid"], monitor), int(epoch["epoch"]))
        else:
            trained.append(trial.number)
        return float(monitor_value(record["valid"], monitor))

    return objective


def _start_with_base(study: Any, tune: SearchTune) -> None:
    """The study's first trial is the base config itself (where its values lie in the space),
    so the search is measured from where it started."""
    if tune.spec.start_with_base and not study.get_trials(deepcopy=False):
        dims = {d.key: d for d in tune.spec.space}
        params = {k: dims[k].optuna_value(v) for k, v in base_params(tune.spec).items()}
        if params:
            study.enqueue_trial(params, skip_if_exists=True)


def run_search(tune: SearchTune, *, workers: int = 1, dry_run: bool = False,
               progress: bool = True) -> list[int]:  # fmt: skip
    """Run trials until the study holds ``n_trials`` ended ones, then the closing seeds.
    Returns the numbers of the trials this process trained (reused ones left out)."""
    from tqdm.auto import tqdm

    from tf4ctr.progress import show_bars

    spec = tune.spec
    if dry_run:
        print(f"{spec.name}: {spec.n_trials} trials ({spec.sampler}, pruner {spec.pruner}) over "
              f"{len(spec.space)} settings; study {tune.study_file}; store {tune.store}")  # fmt: skip
        for dim in spec.space:
            print(f"  {dim.key}: " + (f"one of {list(dim.choices)}" if dim.choices is not None
                  else f"{dim.low} to {dim.high}{' (log)' if dim.log else ''}"))  # fmt: skip
        return []
    children = _start_workers(tune, workers - 1, progress)
    optuna = _optuna()
    study = open_study(tune)
    objective = _objective(tune, _monitor(tune), trained := [])
    bar = tqdm(total=spec.n_trials, desc=spec.name, unit="trial",
               disable=not show_bars(progress), dynamic_ncols=True)  # fmt: skip
    try:
        while True:
            optuna.storages.fail_stale_trials(study)
            ended, running, waiting = _counts(study)
            bar.update(min(ended, spec.n_trials) - bar.n)
            if ended >= spec.n_trials:
                break
            if ended + running >= spec.n_trials and not waiting:
                time.sleep(min(spec.heartbeat_seconds, 5))  # the budget's last trials run elsewhere
                continue
            with contextlib.suppress(_OverBudget):
                study.optimize(objective, n_trials=1, gc_after_trial=False)
        bar.close()
        _closing_seeds(tune, study, progress)
    finally:
        for child in children:
            child.wait()
    return trained


def _start_workers(tune: SearchTune, n: int, progress: bool) -> list[subprocess.Popen]:
    """``--workers N``: N-1 more ``tf4ctr tune`` processes on the same study."""
    command = [sys.executable, "-m", "tf4ctr", "tune", str(tune.spec.path), "--no-progress",
               "--seeds", str(tune.spec.seeds)]  # fmt: skip
    return [subprocess.Popen(command) for _ in range(max(n, 0))]


def closing_cells(tune: SearchTune, study: Any) -> list[Cell]:
    """The best trial (on validation) and the base config, each on ``seeds`` seeds."""
    spec = tune.spec
    if spec.seeds == 0 or not any(t.state.name == "COMPLETE" for t in study.get_trials()):
        return []  # no seeds asked for, or every trial was pruned: nothing to re-run
    best = study.best_trial
    dims = {d.key: d for d in spec.space}
    params = {key: dims[key].from_optuna(value) for key, value in best.params.items()}
    tuned = apply_params(spec.base_raw, params)
    seeds = DEFAULT_SEEDS[: spec.seeds]
    return [make_cell(TUNED, s, tuned, spec.path) for s in seeds] + [
        make_cell(START, s, spec.base_raw, spec.path) for s in seeds
    ]


def _closing_seeds(tune: SearchTune, study: Any, progress: bool) -> None:
    cells = closing_cells(tune, study)
    if cells:
        run_experiment(trial_experiment(tune, cells), progress=progress)
