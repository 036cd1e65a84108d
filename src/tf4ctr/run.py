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
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from tf4ctr.config import LossConfig, RunConfig, parse_run_config, read_yaml
from tf4ctr.data import (
    BatchLoader,
    DatasetConfig,
    EncodedSplit,
    Preprocessor,
    load_dataset_config,
    prepare_dataset,
    read_table,
)
from tf4ctr.errors import ConfigError, UserError
from tf4ctr.framework import CTRLoss, Objective, TwinFocusLoss
from tf4ctr.models import build_model, check_model_config
from tf4ctr.train.analysis import difficulty_counts
from tf4ctr.train.trainer import Trainer

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


def write_json_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train(
    config: RunConfig,
    *,
    run_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Prepare the data, train, evaluate on valid and test, and write the run directory."""
    final_dir = Path(run_dir) if run_dir is not None else Path(config.output_dir) / config.name
    if final_dir.exists() and not overwrite:
        raise UserError(
            f"{final_dir}: run directory already exists (use --overwrite or another name=...)"
        )
    check_model_config(config.model_name, config.model_hparams)
    dataset = resolve_dataset(config)
    show = config.train.progress if progress is None else progress
    data = prepare_dataset(dataset, Path(config.cache_dir), progress=show)
    seed_everything(config.train.seed)
    configure_threads(config.train.num_threads)
    model = build_model(config.model_name, data.schema, **config.model_hparams)
    objective = build_objective(config.loss)

    partial = final_dir.parent / f".{final_dir.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    handler = _attach_log_file(partial / LOG_FILE)
    try:
        resolved = config.to_dict()
        resolved["dataset"] = dataset.to_dict()
        (partial / CONFIG_FILE).write_text(
            yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8"
        )
        write_json_atomic(data.preprocessor.state_dict(), partial / PREPROCESSOR_FILE)
        n_params = count_parameters(model)
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
        train_cfg = config.train if progress is None else _with_progress(config, progress)
        trainer = Trainer(model, objective, train_cfg, checkpoint_path=partial / MODEL_FILE)
        bs, ebs, seed = train_cfg.batch_size, train_cfg.eval_batch_size, train_cfg.seed
        train_loader = BatchLoader(data.train, bs, shuffle=True, seed=seed)
        valid_loader = BatchLoader(data.valid, ebs)
        metrics: dict[str, Any] = {
            "run": config.name,
            "model": config.model_name,
            "loss": config.loss.name,
            "dataset": dataset.name,
            "parameters": n_params,
            "epochs": [],
        }

        eval_loaders = {
            "train": BatchLoader(data.train, ebs),
            "valid": valid_loader,
            "test": BatchLoader(data.test, ebs),
        }

        def checkpoint(record: dict[str, Any]) -> None:
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
            write_json_atomic(metrics, partial / METRICS_FILE)

        start = time.perf_counter()
        fit = trainer.fit(train_loader, valid_loader, on_epoch_end=checkpoint)
        metrics["train_seconds_total"] = time.perf_counter() - start
        metrics["best_epoch"] = fit.best_epoch
        metrics["stopped_early"] = fit.stopped_early
        metrics["valid"] = trainer.evaluate(valid_loader)
        metrics["test"] = trainer.evaluate(eval_loaders["test"])
        log.info("best epoch %d | valid %s", fit.best_epoch, format_metrics(metrics["valid"]))
        log.info("test %s", format_metrics(metrics["test"]))
        write_json_atomic(metrics, partial / METRICS_FILE)
    except BaseException:
        log.removeHandler(handler)
        handler.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.removeHandler(handler)
    handler.close()
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(partial, final_dir)
    return RunResult(final_dir, metrics)


def _with_progress(config: RunConfig, progress: bool):
    from dataclasses import replace

    return replace(config.train, progress=progress)


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {metrics[k]:.6f}" for k in ("auc", "gauc", "logloss") if k in metrics)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model and preprocessing of a finished run from its directory alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    for name in (CONFIG_FILE, PREPROCESSOR_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir / name}: missing (is {run_dir} a finished tf4ctr run?)")
    config = parse_run_config(read_yaml(run_dir / CONFIG_FILE), source=run_dir / CONFIG_FILE)
    try:
        state = json.loads((run_dir / PREPROCESSOR_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{run_dir / PREPROCESSOR_FILE}: line {exc.lineno}: invalid JSON") from None
    preprocessor = Preprocessor.from_state_dict(state)
    dataset = preprocessor.config
    model = build_model(config.model_name, preprocessor.schema, **config.model_hparams)
    weights = torch.load(run_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(
            f"{run_dir / MODEL_FILE}: weights do not fit the configured model ({str(exc).splitlines()[0]})"
        ) from None
    model.eval()
    return LoadedRun(run_dir, config, dataset, preprocessor, model)


def encode_file(run: LoadedRun, path: Path, *, require_label: bool) -> EncodedSplit:
    """Read a raw file and encode it with the run's own (saved) preprocessing."""
    table = read_table(Path(path), run.dataset, require_label=require_label)
    return run.preprocessor.transform(table, require_label=require_label, source=Path(path))


def evaluate(
    run_dir: str | Path, *, files: dict[str, Path] | None = None, batch_size: int = 65_536
) -> dict[str, dict[str, float]]:
    """Metrics of a finished run on its valid/test files (or on the given labelled files)."""
    run = load_run(run_dir)
    files = files or {"valid": run.dataset.valid_data, "test": run.dataset.test_data}
    configure_threads(run.config.train.num_threads)
    trainer = Trainer(run.model, build_objective(run.config.loss), run.config.train)
    return {
        split: trainer.evaluate(BatchLoader(encode_file(run, path, require_label=True), batch_size))
        for split, path in files.items()
    }


def predict(
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    batch_size: int = 65_536,
) -> int:
    """Score raw rows (label column optional); writes CSV with a ``probability`` column."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    run = load_run(run_dir)
    configure_threads(run.config.train.num_threads)
    split = encode_file(run, Path(input_path), require_label=False)
    trainer = Trainer(run.model, build_objective(run.config.loss), run.config.train)
    logits = trainer.predict(BatchLoader(split, batch_size)).logit
    prob = torch.sigmoid(torch.from_numpy(logits)).numpy()
    output_path = Path(output_path)
    if output_path.parent and not output_path.parent.exists():
        raise UserError(f"{output_path.parent}: output directory does not exist")
    tmp = output_path.with_name(f".{output_path.name}.tmp-{os.getpid()}")
    try:
        pacsv.write_csv(pa.table({"probability": prob.astype(np.float64)}), tmp)
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return int(prob.size)
