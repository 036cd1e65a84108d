"""Training one run: prepare the data, open the partial run, fit, and put the run in place.

The run is built in ``<output_dir>/.<name>.partial`` with a checkpoint after every epoch,
under an OS lock that admits one writer per run, and renamed into place when training ended,
so a failed run leaves either nothing or a partial run that ``--resume`` continues
(:mod:`tf4ctr.run.resume` has the rules).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tf4ctr.config import RunConfig
from tf4ctr.data import BatchLoader, DatasetConfig, prepare_dataset
from tf4ctr.errors import UserError
from tf4ctr.run import record as run_record
from tf4ctr.run import tracking, warm_start
from tf4ctr.run.resume import (
    check_run_dir,
    handle_failure,
    read_checkpoint,
    same_preprocessing,
)
from tf4ctr.run.setup import build_parts, check_config, count_parameters, require_both_classes
from tf4ctr.rundir import LOG_FILE, RunLock, RunPaths, remove_run_dir
from tf4ctr.train.device import resolve_device
from tf4ctr.train.distributed import World, world
from tf4ctr.train.trainer import TrainingDiverged, non_finite_parameters

log = logging.getLogger("tf4ctr")


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


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
    if progress is not None:
        config = replace(config, train=replace(config.train, progress=progress))
    if not w.distributed:
        with RunLock(paths):
            check_run_dir(paths, resolved, overwrite=overwrite, resume=resume)
            return _train_locked(config, dataset, resolved, paths, device, resume=resume)
    # torchrun: rank 0 holds the lock and checks the run directory; the others follow its word
    lock, error = None, None
    if w.is_writer:
        try:
            lock = RunLock(paths).acquire()
            check_run_dir(paths, resolved, overwrite=overwrite, resume=resume)
        except UserError as exc:
            error = str(exc)
            if lock is not None:
                lock.release()
                lock = None
    error = w.broadcast(error)
    if error is not None:
        raise UserError(error)
    try:
        return _train_locked(config, dataset, resolved, paths, device, resume=resume, world=w)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(
    config: RunConfig,
    dataset: DatasetConfig,
    resolved: dict[str, Any],
    paths: RunPaths,
    device: torch.device,
    *,
    resume: bool,
    world: World | None = None,
) -> RunResult:
    w = world or World()
    parent = warm_start.load_parent(config, paths.final)
    data = _prepare(config, dataset, w, base=parent.run.preprocessor if parent else None)
    checkpoint = _open_partial(paths, resolved, data, w, resume=resume)
    handler = _attach_log_file(paths.partial / LOG_FILE) if w.is_writer else logging.NullHandler()
    try:
        parts = build_parts(config, data.schema, device, w)
        trainer = parts.trainer
        metrics = _start_metrics(config, dataset, data, parts, device, w, checkpoint)
        if parent is not None and checkpoint is None:
            new_rows = warm_start.copy_weights(parent.run.model, parts.model)
            metrics["init_from"] = {**parent.lineage, "new_rows": new_rows}
            if config.train.init_numeric != "keep":
                metrics["init_from"]["numeric"] = config.train.init_numeric
            if config.train.init_optimizer:
                warm_start.carry_optimizers(
                    warm_start.parent_optimizer_states(parent),
                    parent.run.model,
                    parts.model,
                    trainer.optimizers,
                )
                metrics["init_from"]["optimizer"] = True
            log.info(
                "run %s: starting from run %s (%d new embedding rows)",
                config.name,
                parent.lineage["name"],
                new_rows,
            )
        state = None
        if checkpoint is not None:
            if "rng_by_rank" in checkpoint and w.distributed:
                checkpoint["rng"] = checkpoint["rng_by_rank"][w.rank]
            state = trainer.load_checkpoint(checkpoint)
            metrics = checkpoint["metrics"]
            metrics["epochs"] = list(state.history)
            metrics.setdefault("resumed_after_epoch", []).append(state.epoch)
            log.info(
                "run %s: resuming after epoch %d of %d",
                config.name,
                state.epoch,
                config.train.epochs,
            )
        loaders = _loaders(config, data, w)
        record = run_record.RunRecord(
            paths,
            metrics,
            w,
            trainer=trainer,
            difficulty_loaders=loaders["eval"] if config.train.record_difficulty else None,
        )
        start = time.perf_counter()
        # train.log_to's trackers see each epoch once it is on disk (run/tracking.py)
        with tracking.tracked(
            config, paths.partial, metrics, train_rows=len(data.train), writer=w.is_writer
        ):
            fit = trainer.fit(
                loaders["train"],
                loaders["eval"]["valid"],
                on_epoch_end=record.record_epoch,
                on_checkpoint=record.save_checkpoint,
                state=state,
            )
            _finish_metrics(dataset, data, trainer, metrics, fit, loaders, start)
            record.finish(parts.model)
    except BaseException:
        if not w.is_writer:
            raise  # rank 0 decides what becomes of the partial run
        handle_failure(paths, lambda: _close_log(handler))
        raise
    _close_log(handler)
    return _put_in_place(paths, metrics, w)


def _prepare(config: RunConfig, dataset: DatasetConfig, w: World, base: Any = None) -> Any:
    """The encoded dataset: rank 0 builds the cache, the others read it. ``base``: a parent
    run's preprocessor, whose vocabularies the new ones extend (tf4ctr.run.warm_start)."""

    def prepare() -> Any:
        return prepare_dataset(
            dataset,
            Path(config.cache_dir),
            progress=config.train.progress,
            mapped=config.train.memory_map,
            base=base,
            refresh_scalers=base is not None and config.train.init_numeric == "refresh",
        )

    data = prepare() if w.is_writer else None
    w.barrier()
    if data is None:
        data = prepare()
    for split in ("valid", "test"):
        require_both_classes(data.split(split).label, str(dataset.paths[split]))
    return data


def _open_partial(
    paths: RunPaths, resolved: dict[str, Any], data: Any, w: World, *, resume: bool
) -> dict[str, Any] | None:
    """Open the partial run (rank 0 writes it); on resume, its checkpoint."""
    checkpoint = None
    if resume:
        if w.is_writer:
            same_preprocessing(paths, data.preprocessor.state_dict())
        checkpoint = read_checkpoint(paths)
    elif w.is_writer:  # only rank 0 writes the run directory
        run_record.open_partial(paths, resolved, data.preprocessor.state_dict())
    w.barrier()
    return checkpoint


def _start_metrics(
    config: RunConfig,
    dataset: DatasetConfig,
    data: Any,
    parts: Any,
    device: torch.device,
    w: World,
    checkpoint: dict[str, Any] | None,
) -> dict[str, Any]:
    n_params = count_parameters(parts.model)
    if checkpoint is None:
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
    return {
        "run": config.name,
        "model": config.model_name,
        "loss": config.loss.name,
        "dataset": dataset.name,
        "parameters": n_params,
        "device": str(device),
        "processes": w.size,
        "epochs": [],
    }


def _loaders(config: RunConfig, data: Any, w: World) -> dict[str, Any]:
    bs, ebs, seed = config.train.batch_size, config.train.eval_batch_size, config.train.seed
    t = config.train
    blocks = (t.shuffle_block_rows, t.shuffle_buffer_blocks) if t.shuffle == "block" else None
    return {
        "train": BatchLoader(
            data.train, bs, shuffle=True, seed=seed, shard=(w.rank, w.size), block_shuffle=blocks
        ),
        "eval": {
            "train": BatchLoader(data.train, ebs),
            "valid": BatchLoader(data.valid, ebs),
            "test": BatchLoader(data.test, ebs),
        },
    }


def _finish_metrics(
    dataset: DatasetConfig,
    data: Any,
    trainer: Any,
    metrics: dict[str, Any],
    fit: Any,
    loaders: dict[str, Any],
    start: float,
) -> None:
    """Training time, the best epoch, the final valid and test metrics, and warnings."""
    metrics["train_seconds_total"] = metrics.get("train_seconds_total", 0.0) + (
        time.perf_counter() - start
    )
    metrics["best_epoch"] = fit.best_epoch
    metrics["stopped_early"] = fit.stopped_early
    if bad := non_finite_parameters(trainer.model):
        raise TrainingDiverged(f"the best model's parameter {bad[0]} holds NaN or infinity")
    metrics["valid"] = trainer.evaluate(loaders["eval"]["valid"])
    metrics["test"] = trainer.evaluate(loaders["eval"]["test"])
    warnings = quality_warnings(
        metrics,
        data.valid.label,
        trainer.lr,
        train_labels=data.train.label,
        steps_per_epoch=len(loaders["train"]),
    ) + [
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


def _put_in_place(paths: RunPaths, metrics: dict[str, Any], w: World) -> RunResult:
    if not w.is_writer:
        w.barrier()  # returns once rank 0 has put the run in place
        return RunResult(paths.final, metrics)
    # In this order, a signal at any point leaves either the finished run or a partial run
    # whose last checkpoint --resume finishes without training again.
    if paths.final.exists():
        remove_run_dir(paths.final, paths.name)
    os.replace(paths.partial, paths.final)
    for leftover in paths.checkpoints(paths.final):
        leftover.unlink()  # a finished run is not resumed; its weights are in model.pt
    w.barrier()
    return RunResult(paths.final, metrics)


def _resolved_config(config: RunConfig, dataset: DatasetConfig) -> dict[str, Any]:
    resolved = config.to_dict()
    resolved["dataset"] = dataset.to_dict()
    return resolved


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def _close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


def _base_rate_logloss(labels: np.ndarray) -> float:
    p = float(np.clip(np.mean(labels), 1e-7, 1 - 1e-7))
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def quality_warnings(
    metrics: dict[str, Any],
    valid_labels: np.ndarray,
    lr: float,
    *,
    train_labels: np.ndarray | None = None,
    steps_per_epoch: int | None = None,
) -> list[str]:
    """Plain words when the chosen model is no better than a constant, with the likely cause.

    A valid logloss above the base rate's has two causes that want opposite fixes. A run whose
    training log loss rose, or never fell below the base rate, did not learn: it diverged (a
    lower learning rate). A run whose training log loss fell below the base rate learned the
    training data and is overconfident on the validation data: overfitting or poor
    calibration (regularisation, a smaller model, fewer epochs, or more steps an epoch so the
    batch norms' running statistics settle). Valid AUC then says whether it still ranks.
    """
    out = []
    constant = _base_rate_logloss(valid_labels)
    valid = metrics["valid"]
    losses = [
        e.get("train_ctr_loss", e.get("train_total_loss")) for e in metrics.get("epochs") or []
    ]
    losses = [x for x in losses if x is not None and math.isfinite(x)]
    if valid["logloss"] > constant:
        head = (
            f"valid logloss {valid['logloss']:.4g} is worse than always predicting the "
            f"click rate ({constant:.4g})"
        )
        train_constant = constant if train_labels is None else _base_rate_logloss(train_labels)
        rose = len(losses) >= 2 and losses[-1] > losses[0]
        if losses and not rose and min(losses) < train_constant:
            ranks = valid["auc"] > 0.55
            steps = f" ({steps_per_epoch} steps an epoch now)" if steps_per_epoch else ""
            out.append(
                f"{head}, while the training log loss fell to {min(losses):.4g}, below the "
                f"training click rate's {train_constant:.4g}: "
                + (
                    f"the model still ranks (valid AUC {valid['auc']:.4f}) but is "
                    "overconfident on data it has not seen: overfitting or poor calibration, "
                    "not divergence"
                    if ranks
                    else "it learned the training data and nothing that carries over: "
                    "overfitting, not divergence"
                )
                + "; try more regularisation (loss.embedding_l2, model.dropout), a smaller "
                "model, fewer epochs (a lower train.patience), or a smaller train.batch_size"
                f"{steps} so the batch norms' running statistics settle"
            )
        else:
            trend = (
                f"the training log loss rose from {losses[0]:.4g} to {losses[-1]:.4g}"
                if rose
                else f"the training log loss never fell below the click rate's {train_constant:.4g}"
                if losses
                else "no training loss was recorded"
            )
            out.append(
                f"{head} and {trend}: training probably diverged; try a lower train.lr (now {lr:g})"
            )
    if not valid["auc"] > 0.5:
        out.append(f"valid AUC {valid['auc']:.4f} is no better than chance")
    return out


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {metrics[k]:.6f}" for k in ("auc", "gauc", "logloss") if k in metrics)
