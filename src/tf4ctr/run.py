"""Runs: train a config into a run directory, load it back, evaluate, predict.

This is the Python API behind the CLI. A run directory holds everything
needed to use the model again, with no other file:

    config.yaml         the resolved run config (dataset config inlined)
    preprocessor.json   vocabularies and field specs fit on the training split
    model.pt            best weights, a plain state_dict (torch.load(..., weights_only=True))
    metrics.json        per-epoch history, best epoch, final valid and test metrics
    train.log           the log of the run

It is built under a hidden ``.<name>.partial-<pid>`` directory and renamed into
place only when training finished, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from tf4ctr.config import LossConfig, RunConfig, parse_run_config
from tf4ctr.data import (
    BatchLoader,
    DatasetConfig,
    EncodedSplit,
    FeatureSchema,
    FieldInfo,
    Preprocessor,
    load_dataset_config,
    prepare_dataset,
    read_table,
)
from tf4ctr.data.preprocess import distinct_values
from tf4ctr.data.readers import iter_chunks
from tf4ctr.errors import ConfigError, DataError, UserError, first_message_line
from tf4ctr.fileio import atomic_torch_save, read_yaml, write_atomic, write_json_atomic
from tf4ctr.framework import CTRLoss, Objective, TwinFocusLoss
from tf4ctr.models import build_model, check_model_config
from tf4ctr.nn import FeatureInput
from tf4ctr.rundir import RunLock, RunPaths, is_run_dir, mark_run_dir, remove_run_dir
from tf4ctr.train.analysis import difficulty_counts
from tf4ctr.train.device import resolve_device
from tf4ctr.train.distributed import World, world
from tf4ctr.train.trainer import (
    FitState,
    Predictions,
    Trainer,
    TrainingDiverged,
    non_finite_parameters,
    prediction_metrics,
)

log = logging.getLogger("tf4ctr")

CONFIG_FILE = "config.yaml"
PREPROCESSOR_FILE = "preprocessor.json"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    dataset: DatasetConfig
    preprocessor: Preprocessor
    model: nn.Module


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_threads(num_threads: int | None) -> None:
    """Use every core by default; torch's own default can be lower in containers."""
    if num_threads is None:
        num_threads = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    torch.set_num_threads(max(1, int(num_threads)))


def build_objective(loss: LossConfig) -> Objective:
    """The ``loss`` section as an :class:`Objective` (Eq. 12 for ``tf``)."""
    twin = TwinFocusLoss(loss.alpha, loss.c, loss.gamma) if loss.name == "tf" else None
    ctr = CTRLoss(
        loss.name if loss.name in CTRLoss.NAMES else "bce",
        focal_alpha=loss.focal_alpha,
        focal_gamma=loss.focal_gamma,
        rce_beta=loss.rce_beta,
    )
    return Objective(twin, embedding_l2=loss.embedding_l2, ctr_loss=ctr)


def resolve_dataset(config: RunConfig) -> DatasetConfig:
    if isinstance(config.dataset, Path):
        return load_dataset_config(config.dataset)
    base = config.source.parent if config.source is not None else Path.cwd()
    return load_dataset_config(config.dataset, base_dir=base)


def require_both_classes(labels: np.ndarray, where: str) -> None:
    """AUC is undefined unless a labelled split has both clicks and non-clicks."""
    positives = int(np.count_nonzero(labels))
    if positives in (0, len(labels)):
        value = 1 if positives else 0
        raise DataError(
            f"{where}: every one of its {len(labels):,} labels is {value}; AUC and early "
            "stopping need both 0 and 1"
        )


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class RunInterrupted(Exception):
    """Training stopped by SIGINT / SIGTERM; the partial run stays, resumable."""

    def __init__(self, name: str, partial: Path | None, epochs_done: int) -> None:
        self.name, self.partial, self.epochs_done = name, partial, epochs_done
        if partial is not None:
            epochs = "epoch 1 is" if epochs_done == 1 else f"epochs 1-{epochs_done} are"
            kept = f"{epochs} kept in {partial}"
        else:
            kept = "no epoch had finished, so nothing was kept"
        super().__init__(f"run {name} stopped during epoch {epochs_done + 1}; {kept}")

    @property
    def resumable(self) -> bool:
        return self.partial is not None


# Keys whose value may differ between an interrupted run and its resumption: they change
# nothing a run computes (num_threads changes the last digits only, so it is warned about).
_RESUME_FREE_KEYS = (
    "train.progress",
    "train.num_threads",
    "train.device",
    "train.memory_map",
    "output_dir",
    "cache_dir",
)


def check_config(config: RunConfig) -> DatasetConfig:
    """Check everything a run config says before any data is read; returns its dataset.

    The model's keys by their rules (:func:`check_model_config`), then a dry build of the
    model on a placeholder schema of the dataset's fields and one forward pass on two rows,
    so settings that would only fail once the encoded cache is built (minutes on Criteo)
    fail now. Each message names the key and whether it came from the file or the command line.
    """
    check_model_config(config.model_name, config.model_hparams, origin=config.origin)
    resolve_device(config.train.device, origin=config.origin("train.device"))
    dataset = resolve_dataset(config)
    schema = placeholder_schema(dataset)
    where = config.origin("model")
    try:
        model = build_model(config.model_name, schema, **config.model_hparams)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    try:
        model.eval()
        batch = FeatureInput(
            torch.ones(2, sum(schema.widths), dtype=torch.long),
            torch.zeros(2, len(schema.numeric)),
        )
        with torch.no_grad():
            model(batch)
    except Exception as exc:  # any failure here comes from the settings, not from data
        raise ConfigError(
            f"{where}model ({config.model_name}): these settings do not make a working model "
            f"({type(exc).__name__}: {first_message_line(str(exc), 'no message')})"
        ) from None
    return dataset


def placeholder_schema(dataset: DatasetConfig) -> FeatureSchema:
    """The dataset's fields with tiny made-up vocabularies: enough to build a model."""
    fields = [
        FieldInfo(
            f.name,
            "sequence" if f.is_sequence else "categorical",
            4,
            f.max_len if f.is_sequence and f.max_len else 1,
            f.pooling or "sum",
        )
        for f in dataset.feature_cols
        if f.is_categorical
    ]
    fields += [
        FieldInfo(f.name, "numeric", 0) for f in dataset.feature_cols if not f.is_categorical
    ]
    return FeatureSchema(tuple(fields))


def _resolved_config(config: RunConfig, dataset: DatasetConfig) -> dict[str, Any]:
    resolved = config.to_dict()
    resolved["dataset"] = dataset.to_dict()
    return resolved


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _real_data_paths(mapping: dict[str, Any]) -> dict[str, Any]:
    """``mapping`` with its data file paths (keys ending in ``_data``) resolved, links
    followed: the same data reached through another path (a link, a moved checkout) is the
    same data."""
    return {
        k: os.path.realpath(v) if k.endswith("_data") and isinstance(v, str) else v
        for k, v in mapping.items()
    }


def _check_resumable(paths: RunPaths, resolved: dict[str, Any]) -> None:
    """Refuse to resume when anything that changes results differs from the interrupted run."""
    config_file = paths.partial / CONFIG_FILE
    if paths.latest_checkpoint() is None or not config_file.is_file():
        raise UserError(
            f"{paths.partial}: the interrupted run {paths.name} has no complete epoch to resume "
            "from; start over with --overwrite"
        )
    before = _real_data_paths(_flatten(_saved_config(config_file)))
    now = _real_data_paths(_flatten(json.loads(json.dumps(resolved, default=str))))
    for key in sorted(set(before) | set(now)):
        if key in _RESUME_FREE_KEYS or before.get(key) == now.get(key):
            continue
        raise ConfigError(
            f"{key}: {before.get(key)!r} in the interrupted run {paths.name}, {now.get(key)!r} "
            "now; resume with the same config, or start over with --overwrite"
        )
    if before.get("train.num_threads") != now.get("train.num_threads"):
        log.warning(
            "train.num_threads differs from the interrupted run: results match an "
            "uninterrupted run to the last digit only at the same thread count"
        )


def _read_checkpoint(paths: RunPaths) -> dict[str, Any]:
    latest = paths.latest_checkpoint()
    assert latest is not None  # checked by _check_resumable
    try:
        # our own file, written by torch.save; it holds numpy RNG state and Python
        # objects of the fit state, so it is not a plain tensor dict
        return torch.load(latest[1], map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(
            f"{latest[1]}: unreadable checkpoint ({first_message_line(str(exc), 'no message')}); "
            "start over with --overwrite"
        ) from None


def _same_preprocessing(paths: RunPaths, state: dict[str, Any]) -> None:
    def resolved(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "config": _real_data_paths(state.get("config") or {})}

    saved = json.loads((paths.partial / PREPROCESSOR_FILE).read_text(encoding="utf-8"))
    if resolved(saved) != resolved(json.loads(json.dumps(state))):
        raise UserError(
            f"{paths.partial}: the data files changed since run {paths.name} was interrupted "
            "(its vocabularies differ); start over with --overwrite"
        )


def _base_rate_logloss(labels: np.ndarray) -> float:
    p = float(np.clip(np.mean(labels), 1e-7, 1 - 1e-7))
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def _quality_warnings(metrics: dict[str, Any], valid_labels: np.ndarray, lr: float) -> list[str]:
    """Plain words when the chosen model is no better than a constant: a diverged run."""
    out = []
    constant = _base_rate_logloss(valid_labels)
    valid = metrics["valid"]
    if valid["logloss"] > constant:
        out.append(
            f"valid logloss {valid['logloss']:.4g} is worse than always predicting the "
            f"click rate ({constant:.4g}): training probably diverged; try a lower train.lr "
            f"(now {lr:g})"
        )
    if not valid["auc"] > 0.5:
        out.append(f"valid AUC {valid['auc']:.4f} is no better than chance")
    return out


def train(
    config: RunConfig,
    *,
    run_dir: Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Prepare the data, train, evaluate on valid and test, and write the run directory.

    The run is built in ``<output_dir>/.<name>.partial`` with a checkpoint after every
    epoch, under an OS lock that admits one writer per run, and renamed to
    ``<output_dir>/<name>`` (or ``run_dir``) when training ends. ``resume`` continues an
    interrupted run from its last complete epoch, exactly; ``overwrite`` replaces a
    finished or interrupted run of that name. Raises :class:`RunInterrupted` on Ctrl-C
    (SIGINT), leaving the partial run resumable.
    """
    paths = (
        RunPaths.for_run_dir(run_dir)
        if run_dir is not None
        else RunPaths.create(config.output_dir, config.name, origin=config.origin("name") + "name")
    )
    dataset = check_config(config)
    resolved = _resolved_config(config, dataset)
    device = resolve_device(config.train.device)
    w = world(device)
    if not w.distributed:
        with RunLock(paths):
            _check_run_dir(paths, resolved, overwrite=overwrite, resume=resume)
            return _train_locked(
                config, dataset, resolved, paths, device, resume=resume, progress=progress
            )
    # torchrun: rank 0 holds the lock and checks the run directory; the others follow its word
    lock, error = None, None
    if w.is_writer:
        try:
            lock = RunLock(paths).acquire()
            _check_run_dir(paths, resolved, overwrite=overwrite, resume=resume)
        except UserError as exc:
            error = str(exc)
            if lock is not None:
                lock.release()
                lock = None
    error = w.broadcast(error)
    if error is not None:
        raise UserError(error)
    try:
        return _train_locked(
            config, dataset, resolved, paths, device, resume=resume, progress=progress, world=w
        )
    finally:
        if lock is not None:
            lock.release()


def _check_run_dir(
    paths: RunPaths, resolved: dict[str, Any], *, overwrite: bool, resume: bool
) -> None:
    """What may happen to the run directory, decided (and any removal done) under the lock."""
    if paths.final.exists():
        if resume and not paths.partial.exists():
            raise UserError(f"{paths.final}: run {paths.name} is finished; nothing to resume")
        if not overwrite and not resume:
            raise UserError(
                f"{paths.final}: run directory already exists (use --overwrite or another name=...)"
            )
        if not is_run_dir(paths.final, paths.name):
            remove_run_dir(paths.final, paths.name)  # refuses, naming the folder
    if paths.partial.exists():
        if resume:
            _check_resumable(paths, resolved)
        elif overwrite:
            remove_run_dir(paths.partial, paths.name)
        else:
            raise UserError(
                f"{paths.partial}: run {paths.name} was interrupted "
                f"({_epochs_done(paths)} epoch(s) saved); continue it with --resume, or "
                "start over with --overwrite"
            )
    elif resume:
        raise UserError(
            f"{paths.output_dir}: no interrupted run {paths.name} to resume "
            f"(expected {paths.partial.name})"
        )


def _epochs_done(paths: RunPaths) -> int:
    latest = paths.latest_checkpoint()
    return 0 if latest is None else latest[0]


def _train_locked(
    config: RunConfig,
    dataset: DatasetConfig,
    resolved: dict[str, Any],
    paths: RunPaths,
    device: torch.device,
    *,
    resume: bool,
    progress: bool | None,
    world: World | None = None,
) -> RunResult:
    w = world or World()
    show = config.train.progress if progress is None else progress

    def prepare() -> Any:
        return prepare_dataset(
            dataset, Path(config.cache_dir), progress=show, mapped=config.train.memory_map
        )

    data = prepare() if w.is_writer else None
    w.barrier()  # rank 0 builds the cache; the others read it
    if data is None:
        data = prepare()
    for split in ("valid", "test"):
        require_both_classes(data.split(split).label, str(dataset.paths[split]))
    seed_everything(config.train.seed)
    configure_threads(config.train.num_threads)
    model = build_model(config.model_name, data.schema, **config.model_hparams)
    if w.rank > 0:  # the same initial weights (DDP also broadcasts rank 0's), other dropout masks
        seed_everything(config.train.seed + 7919 * w.rank)
    objective = build_objective(config.loss)
    partial = paths.partial
    checkpoint_data: dict[str, Any] | None = None
    if resume:
        if w.is_writer:
            _same_preprocessing(paths, data.preprocessor.state_dict())
        checkpoint_data = _read_checkpoint(paths)
    elif w.is_writer:  # only rank 0 writes the run directory
        partial.mkdir(parents=True)
        mark_run_dir(partial, paths.name)
        (partial / CONFIG_FILE).write_text(
            yaml.safe_dump(json.loads(json.dumps(resolved, default=str)), sort_keys=False),
            encoding="utf-8",
        )
        write_json_atomic(data.preprocessor.state_dict(), partial / PREPROCESSOR_FILE)
    w.barrier()
    handler = _attach_log_file(partial / LOG_FILE) if w.is_writer else logging.NullHandler()
    state: FitState | None = None
    try:
        n_params = count_parameters(model)
        train_cfg = config.train if progress is None else _with_progress(config, progress)
        trainer = Trainer(model, objective, train_cfg, device=device, world=w)
        metrics: dict[str, Any] = {
            "run": config.name,
            "model": config.model_name,
            "loss": config.loss.name,
            "dataset": dataset.name,
            "parameters": n_params,
            "device": str(device),
            "processes": w.size,
            "epochs": [],
        }
        if checkpoint_data is not None:
            if "rng_by_rank" in checkpoint_data and w.distributed:
                checkpoint_data["rng"] = checkpoint_data["rng_by_rank"][w.rank]
            state = trainer.load_checkpoint(checkpoint_data)
            metrics = checkpoint_data["metrics"]
            metrics["epochs"] = list(state.history)
            metrics.setdefault("resumed_after_epoch", []).append(state.epoch)
            log.info(
                "run %s: resuming after epoch %d of %d", config.name, state.epoch, train_cfg.epochs
            )
        else:
            log.info(
                "run %s: model %s (%s parameters), loss %s, data %s (train %d, valid %d, test %d rows)",
                config.name,
                config.model_name,
                f"{n_params:,}",
                config.loss.name,
                dataset.name,
                len(data.train),
                len(data.valid),
                len(data.test),
            )
        bs, ebs, seed = train_cfg.batch_size, train_cfg.eval_batch_size, train_cfg.seed
        train_loader = BatchLoader(data.train, bs, shuffle=True, seed=seed, shard=(w.rank, w.size))
        valid_loader = BatchLoader(data.valid, ebs)
        eval_loaders = {
            "train": BatchLoader(data.train, ebs),
            "valid": valid_loader,
            "test": BatchLoader(data.test, ebs),
        }

        def record_epoch(record: dict[str, Any]) -> None:
            if train_cfg.record_difficulty:
                record["difficulty"] = {}
                for split, loader in eval_loaders.items():
                    # fit has just predicted the validation split; the weights are unchanged
                    pred = (
                        trainer.last_valid_predictions
                        if split == "valid"
                        else trainer.predict(loader)
                    )
                    record["difficulty"][split] = difficulty_counts(pred.label, pred.logit)
            metrics["epochs"].append(record)

        def save_checkpoint(checkpoint: dict[str, Any]) -> None:
            rng_by_rank = w.gather(checkpoint["rng"])  # collective: every rank takes part
            if not w.is_writer:
                return
            if w.distributed:
                checkpoint["rng_by_rank"] = rng_by_rank
            start = time.perf_counter()
            checkpoint["metrics"] = {k: v for k, v in metrics.items() if k != "epochs"}
            record = metrics["epochs"][-1]
            atomic_torch_save(checkpoint, paths.checkpoint_for(record["epoch"]))
            paths.remove_older_checkpoints(record["epoch"])
            record["checkpoint_seconds"] = time.perf_counter() - start
            write_json_atomic(metrics, partial / METRICS_FILE)

        start = time.perf_counter()
        fit = trainer.fit(
            train_loader,
            valid_loader,
            on_epoch_end=record_epoch,
            on_checkpoint=save_checkpoint,
            state=state,
        )
        metrics["train_seconds_total"] = metrics.get("train_seconds_total", 0.0) + (
            time.perf_counter() - start
        )
        metrics["best_epoch"] = fit.best_epoch
        metrics["stopped_early"] = fit.stopped_early
        if bad := non_finite_parameters(model):
            raise TrainingDiverged(f"the best model's parameter {bad[0]} holds NaN or infinity")
        metrics["valid"] = trainer.evaluate(valid_loader)
        metrics["test"] = trainer.evaluate(eval_loaders["test"])
        warnings = _quality_warnings(metrics, data.valid.label, trainer.lr) + [
            f"gauc is undefined on {split} (no {dataset.group_col} has both a click and a "
            "non-click); written as null"
            for split in ("valid", "test")
            if math.isnan(metrics[split].get("gauc", 0.0))
        ]
        for warning in warnings:
            log.warning("warning: %s", warning)
        if warnings:
            metrics["warnings"] = warnings
        log.info("best epoch %d | valid %s", fit.best_epoch, format_metrics(metrics["valid"]))
        log.info("test %s", format_metrics(metrics["test"]))
        if w.is_writer:
            # CPU tensors: a run trained on a GPU loads anywhere
            weights = {k: v.cpu() for k, v in model.state_dict().items()}
            atomic_torch_save(weights, partial / MODEL_FILE)
            write_json_atomic(metrics, partial / METRICS_FILE)
    except BaseException:
        if not w.is_writer:
            raise  # rank 0 decides what becomes of the partial run
        _handle_failure(paths, handler)
        raise
    _close_log(handler)
    if not w.is_writer:
        w.barrier()  # returns once rank 0 has put the run in place
        return RunResult(paths.final, metrics)
    # In this order, a signal at any point leaves either the finished run or a partial run
    # whose last checkpoint --resume finishes without training again.
    if paths.final.exists():
        remove_run_dir(paths.final, paths.name)
    os.replace(partial, paths.final)
    for leftover in paths.final.glob("checkpoint-epoch*.pt"):
        leftover.unlink()  # a finished run is not resumed; its weights are in model.pt
    w.barrier()
    return RunResult(paths.final, metrics)


def _handle_failure(paths: RunPaths, handler: logging.Handler) -> None:
    """Called from an ``except``: keep a resumable partial run, remove a useless one."""
    exc = sys.exc_info()[1]
    partial = paths.partial
    _close_log(handler)
    if isinstance(exc, KeyboardInterrupt):
        # what is on disk, not what this process last noted: the signal may have landed
        # between a checkpoint's rename and the bookkeeping after it
        saved = _epochs_done(paths)
        if saved == 0:
            remove_run_dir(partial, paths.name)
            raise RunInterrupted(paths.name, None, 0) from None
        raise RunInterrupted(paths.name, partial, saved) from None
    if isinstance(exc, TrainingDiverged):
        remove_run_dir(partial, paths.name)  # resuming would diverge again: nothing to keep
    elif paths.latest_checkpoint() is None:
        remove_run_dir(partial, paths.name)


def _close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


def _with_progress(config: RunConfig, progress: bool):
    from dataclasses import replace

    return replace(config.train, progress=progress)


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {metrics[k]:.6f}" for k in ("auc", "gauc", "logloss") if k in metrics)


def _saved_config(path: Path) -> Any:
    """A run directory's config.yaml as the run used it. It spells out every setting tf4ctr had
    when the run was written; one added since (``train.fold_embeddings``) is filled with what
    such a run did (experiments.keys.settings_of_its_day), so ``tf4ctr evaluate`` of an older
    run still scores it as its training did."""
    from tf4ctr.experiments.keys import settings_of_its_day

    raw = read_yaml(path)
    return settings_of_its_day(raw) if isinstance(raw, dict) else raw


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model and preprocessing of a finished run from its directory alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    for name in (CONFIG_FILE, PREPROCESSOR_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir / name}: missing (is {run_dir} a finished tf4ctr run?)")
    config = parse_run_config(_saved_config(run_dir / CONFIG_FILE), source=run_dir / CONFIG_FILE)
    try:
        state = json.loads((run_dir / PREPROCESSOR_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{run_dir / PREPROCESSOR_FILE}: line {exc.lineno}: invalid JSON") from None
    preprocessor = Preprocessor.from_state_dict(state)
    dataset = preprocessor.config
    model = build_model(config.model_name, preprocessor.schema, **config.model_hparams)
    try:
        weights = torch.load(run_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, overwritten or not written by torch.save
        raise UserError(
            f"{run_dir / MODEL_FILE}: not a readable weights file ({first_message_line(str(exc), 'no message')[:120]})"
        ) from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(
            f"{run_dir / MODEL_FILE}: weights do not fit the configured model ({str(exc).splitlines()[0]})"
        ) from None
    model.eval()
    return LoadedRun(run_dir, config, dataset, preprocessor, model)


def encode_file(run: LoadedRun, path: Path, *, require_label: bool) -> EncodedSplit:
    """Read a raw file whole and encode it with the run's own (saved) preprocessing."""
    table = read_table(Path(path), run.dataset, require_label=require_label)
    return run.preprocessor.transform(table, require_label=require_label, source=Path(path))


def _parquet_rows(path: Path) -> int | None:
    """Rows of a parquet file from its footer (a bar's total); None for anything else."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError):  # not parquet, unreadable: the reader reports it
        return None


def encode_blocks(
    run: LoadedRun,
    path: Path,
    *,
    require_label: bool,
    block_bytes: int = 16 << 20,
    group_values: Any = None,
    progress: bool = False,
) -> Iterator[EncodedSplit]:
    """The file's rows encoded block by block (memory holds one block, not the file).

    With ``progress`` (and a terminal), a bar in bytes of the file for a plain CSV, else in
    rows read."""
    from tqdm.auto import tqdm

    from tf4ctr.data.readers import byte_total
    from tf4ctr.progress import show_bars

    path = Path(path)
    total_bytes = byte_total(path, run.dataset)
    by_bytes = total_bytes is not None
    bar = tqdm(
        desc=f"scoring {path.name}",
        unit="B" if by_bytes else " rows",
        unit_scale=True,
        unit_divisor=1024 if by_bytes else 1000,
        total=total_bytes if by_bytes else _parquet_rows(path),
        disable=not show_bars(progress),
        leave=False,
    )

    def at(position: int) -> None:
        bar.update(position - bar.n)

    with bar:
        for table, first_line in iter_chunks(
            path,
            run.dataset,
            require_label=require_label,
            block_bytes=block_bytes,
            on_bytes=at if by_bytes else None,
        ):
            if not by_bytes:
                bar.update(table.num_rows)
            yield run.preprocessor.transform(
                table,
                require_label=require_label,
                source=path,
                first_row=first_line,
                group_values=group_values,
            )


def _scoring_trainer(run: LoadedRun) -> Trainer:
    configure_threads(run.config.train.num_threads)
    return Trainer(
        run.model,
        build_objective(run.config.loss),
        run.config.train,
        device=resolve_device(run.config.train.device),
    )


def evaluate(
    run_dir: str | Path,
    *,
    files: dict[str, Path] | None = None,
    batch_size: int = 65_536,
    block_bytes: int = 16 << 20,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics of a finished run on its valid/test files (or on the given labelled files).

    Files are read and scored block by block; only labels, logits and gAUC groups (a few
    bytes per row) are kept for the metrics.
    """
    run = load_run(run_dir)
    files = files or {"valid": run.dataset.valid_data, "test": run.dataset.test_data}
    trainer = _scoring_trainer(run)
    group_col = run.dataset.group_col
    results = {}
    for split, path in files.items():
        groups = None
        if group_col is not None:  # one pass for the group ids, so every block numbers alike
            groups = distinct_values(
                t[group_col]
                for t, _ in iter_chunks(Path(path), run.dataset, block_bytes=block_bytes)
            )
        labels, logits, group_ids = [], [], []
        start = time.perf_counter()
        for block in encode_blocks(
            run,
            path,
            require_label=True,
            block_bytes=block_bytes,
            group_values=groups,
            progress=progress,
        ):
            pred = trainer.predict(BatchLoader(block, batch_size))
            labels.append(pred.label)
            logits.append(pred.logit)
            if pred.group is not None:
                group_ids.append(pred.group)
        pred = Predictions(
            label=np.concatenate(labels),
            logit=np.concatenate(logits),
            group=np.concatenate(group_ids) if group_ids else None,
        )
        require_both_classes(pred.label, str(path))
        metrics = prediction_metrics(pred, where=f"{path}: ")
        metrics["seconds"] = time.perf_counter() - start
        results[split] = metrics
    return results


def predict(
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    batch_size: int = 65_536,
    block_bytes: int = 16 << 20,
    progress: bool = True,
) -> int:
    """Score raw rows (label column optional), block by block, writing as it goes.

    The output is one ``probability`` column, row for row: parquet when ``output_path`` ends
    in .parquet or .pq, CSV otherwise, or CSV on standard output for ``-``. Memory does not
    grow with the number of rows. A file is written under a temporary name and renamed when
    complete. Returns the number of rows scored.
    """
    run = load_run(run_dir)
    trainer = _scoring_trainer(run)
    out = str(output_path)
    if out != "-":
        parent = Path(out).parent
        if not parent.is_dir():
            raise UserError(f"{parent}: output directory does not exist")

    def scores(split: EncodedSplit) -> Any:
        import pyarrow as pa

        logits = trainer.predict(BatchLoader(split, batch_size)).logit
        prob = torch.sigmoid(torch.from_numpy(logits)).numpy().astype(np.float64)
        return pa.table({"probability": prob})

    blocks = encode_blocks(
        run, Path(input_path), require_label=False, block_bytes=block_bytes, progress=progress
    )
    if out == "-":
        return _write_scores(map(scores, blocks), sys.stdout.buffer, parquet=False)
    parquet = Path(out).suffix.lower() in (".parquet", ".pq")
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        with open(tmp, "wb") as sink:
            written = _write_scores(map(scores, blocks), sink, parquet=parquet)

    write_atomic(out, write, suffix=Path(out).suffix)
    return written


def _write_scores(tables: Iterator[Any], sink: Any, *, parquet: bool) -> int:
    """Stream score tables into one CSV or parquet file; returns the rows written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([("probability", pa.float64())])
    writer = pq.ParquetWriter(sink, schema) if parquet else pacsv.CSVWriter(sink, schema)
    rows = 0
    try:
        for table in tables:
            writer.write_table(table)
            rows += table.num_rows
    finally:
        writer.close()
    return rows
