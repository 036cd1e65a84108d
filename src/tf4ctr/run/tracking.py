"""Trackers: each epoch's numbers, also sent to TensorBoard or MLflow (``train.log_to``).

metrics.json stays the record of a run; a tracker is a second copy for the tools the field
looks at curves with. It is fed by :func:`tf4ctr.run.record.add_after_epoch`, so it sees an
epoch only once that epoch is on disk, and it writes only inside the run's own folder
(TensorBoard: ``<run>/tensorboard/``) or beside it (MLflow: ``<output folder>/mlruns/``, since
the run folder is the artefact it copies). Nothing here changes what a run computes, so
``train.log_to`` is no part of a result's key.

Per epoch: every loss term (``loss/total``, ``loss/ctr``, ...), every validation metric
(``valid/auc``, ...), the learning rate (``train/lr``) and the training throughput
(``train/samples_per_second``); once: the config as hyperparameters, and at the end the
final valid and test metrics (``final/valid_auc``, ...).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tf4ctr.config import RunConfig
from tf4ctr.errors import UserError
from tf4ctr.rundir import CONFIG_FILE, LOG_FILE, METRICS_FILE, MODEL_FILE, PREPROCESSOR_FILE

__all__ = ["TENSORBOARD_DIR", "epoch_scalars", "flat_hparams", "tracked"]

#: the TensorBoard log folder inside a run
TENSORBOARD_DIR = "tensorboard"
#: the MLflow tracking folder, beside the runs (in the output folder)
MLFLOW_DIR = "mlruns"
_FINAL = ("auc", "gauc", "logloss")


def epoch_scalars(record: dict[str, Any], train_rows: int) -> dict[str, float]:
    """The numbers a tracker plots for one epoch record of metrics.json."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if key.startswith("train_") and key.endswith("_loss") and isinstance(value, float):
            out[f"loss/{key[len('train_') : -len('_loss')]}"] = value
    for key, value in (record.get("valid") or {}).items():
        if key != "seconds" and isinstance(value, int | float):
            out[f"valid/{key}"] = float(value)
    if "lr" in record:
        out["train/lr"] = float(record["lr"])
    seconds = record.get("train_seconds")
    if seconds:
        out["train/samples_per_second"] = train_rows / seconds
        out["train/seconds"] = float(seconds)
    return out


def flat_hparams(config: RunConfig) -> dict[str, Any]:
    """The config as flat ``section.key`` hyperparameters (lists written out as text, since
    TensorBoard's hparams take numbers, strings and booleans only)."""
    resolved = config.to_dict()
    out: dict[str, Any] = {"model.name": config.model_name}
    for section in ("model", "loss", "train"):
        for key, value in resolved[section].items():
            if section == "train" and key in ("progress", "log_to"):
                continue
            if value is None or isinstance(value, list | tuple | dict):
                value = json.dumps(value)
            out[f"{section}.{key}"] = value
    return out


class _TensorBoard:
    def __init__(self, folder: Path, hparams: dict[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams as hparams_summary
        except ImportError:  # torch's writer needs the tensorboard package
            raise UserError(
                "train.log_to: tensorboard needs the tensorboard package: "
                "pip install 'tf4ctr[track]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(folder))
        metric_names = {f"final/{split}_{m}": 0.0 for split in ("valid", "test") for m in _FINAL}
        experiment, start, self._end = hparams_summary(hparams, metric_names)
        for summary in (experiment, start):
            self.writer.file_writer.add_summary(summary)

    def epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def finish(self, final: dict[str, float], epoch: int, run_dir: Path) -> None:
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.file_writer.add_summary(self._end)

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    """A local MLflow tracking folder (file store): no server, nothing leaves the machine."""

    def __init__(self, folder: Path, run_name: str, hparams: dict[str, Any]) -> None:
        try:
            import mlflow
        except ImportError:
            raise UserError(
                "train.log_to: mlflow needs the mlflow package: pip install mlflow"
            ) from None
        self.mlflow = mlflow
        mlflow.set_tracking_uri(folder.resolve().as_uri())
        mlflow.set_experiment("tf4ctr")
        self.run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:500] for k, v in hparams.items()})

    def epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        self.mlflow.log_metrics({k.replace("/", "_"): v for k, v in scalars.items()}, step=epoch)

    def finish(self, final: dict[str, float], epoch: int, run_dir: Path) -> None:
        self.mlflow.log_metrics({k.replace("/", "_"): v for k, v in final.items()}, step=epoch)
        # the run's own files, not its last checkpoint (resumption state, as large as the model)
        for name in (CONFIG_FILE, METRICS_FILE, MODEL_FILE, PREPROCESSOR_FILE, LOG_FILE):
            if (run_dir / name).is_file():
                self.mlflow.log_artifact(str(run_dir / name), artifact_path="run")

    def close(self) -> None:
        self.mlflow.end_run()


@contextlib.contextmanager
def tracked(
    config: RunConfig,
    run_dir: Path,
    metrics: dict[str, Any],
    *,
    train_rows: int,
    writer: bool = True,
) -> Iterator[None]:
    """Send every epoch recorded inside the ``with`` block to ``config.train.log_to``'s
    trackers; on a clean exit, also the final metrics that ``metrics`` then holds (and, for
    MLflow, the run's files). ``run_dir`` is the run folder being written (the partial one).
    Nothing happens when ``log_to`` is empty or this process is not the writer (DDP rank > 0).
    """
    from tf4ctr.run.record import add_after_epoch

    names = config.train.log_to if writer else ()
    if not names:
        yield
        return
    hparams = flat_hparams(config)
    trackers: list[Any] = []
    try:
        for name in dict.fromkeys(names):
            if name == "tensorboard":
                trackers.append(_TensorBoard(run_dir / TENSORBOARD_DIR, hparams))
            else:
                trackers.append(_MLflow(run_dir.parent / MLFLOW_DIR, config.name, hparams))

        def on_epoch(record: dict[str, Any], _metrics: dict[str, Any]) -> None:
            scalars = epoch_scalars(record, train_rows)
            for tracker in trackers:
                tracker.epoch(int(record["epoch"]), scalars)

        remove = add_after_epoch(on_epoch)
        try:
            yield
        finally:
            remove()
        final = {
            f"final/{split}_{m}": float(metrics[split][m])
            for split in ("valid", "test")
            for m in _FINAL
            if isinstance((metrics.get(split) or {}).get(m), int | float)
        }
        last = len(metrics.get("epochs") or ())
        for tracker in trackers:
            tracker.finish(final, last, run_dir)
    finally:
        for tracker in trackers:
            tracker.close()
