"""The one writer of a run's files: the partial run's opening files, the metrics as epochs
finish, a checkpoint after every epoch, and the best weights at the end.

Every file is written atomically (temporary name, then rename), so a signal at any moment
leaves each file whole or absent. Only rank 0 writes; the other ranks take part in the
collectives a checkpoint needs and return.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from tf4ctr.fileio import atomic_torch_save, write_json_atomic, write_text_atomic
from tf4ctr.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    PREPROCESSOR_FILE,
    RunPaths,
    mark_run_dir,
)
from tf4ctr.train.analysis import difficulty_counts
from tf4ctr.train.distributed import World

#: Called with (epoch, checkpoint path) once a checkpoint is on disk: the seam for tools that
#: need a known point in a run (the crash-injection test helper, benchmarks/gpu_smoke.py).
_AFTER_CHECKPOINT: list[Callable[[int, Path], None]] = []
#: Called with (the epoch's record, the run's metrics so far) once the epoch is on disk (its
#: checkpoint and metrics.json written): the seam for trackers (tf4ctr.run.tracking) and for a
#: tuner's pruner, which may raise to stop the run there (the partial run stays resumable).
_AFTER_EPOCH: list[Callable[[dict[str, Any], dict[str, Any]], None]] = []


def add_after_checkpoint(hook: Callable[[int, Path], None]) -> Callable[[], None]:
    """Call ``hook(epoch, path)`` after every checkpoint this process writes; returns a function
    that removes it again."""
    _AFTER_CHECKPOINT.append(hook)
    return lambda: _AFTER_CHECKPOINT.remove(hook)


def add_after_epoch(hook: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[[], None]:
    """Call ``hook(epoch_record, metrics)`` after every epoch this process writes (rank 0 only,
    after the epoch's checkpoint); returns a function that removes it again."""
    _AFTER_EPOCH.append(hook)
    return lambda: _AFTER_EPOCH.remove(hook)


def open_partial(paths: RunPaths, resolved: dict[str, Any], preprocessor_state: Any) -> None:
    """Create the partial run directory with its marker, config and vocabularies."""
    partial = paths.partial
    partial.mkdir(parents=True)
    mark_run_dir(partial, paths.name)
    write_text_atomic(
        partial / CONFIG_FILE,
        yaml.safe_dump(json.loads(json.dumps(resolved, default=str)), sort_keys=False),
    )
    write_json_atomic(preprocessor_state, partial / PREPROCESSOR_FILE)


class RunRecord:
    """The metrics of one run as they grow, and the files that hold them.

    :meth:`record_epoch` and :meth:`save_checkpoint` are the Trainer's ``on_epoch_end`` and
    ``on_checkpoint`` callbacks; :meth:`finish` writes the best weights and final metrics.
    """

    def __init__(
        self,
        paths: RunPaths,
        metrics: dict[str, Any],
        world: World,
        *,
        trainer: Any = None,
        difficulty_loaders: dict[str, Any] | None = None,
    ) -> None:
        self.paths, self.metrics, self.world = paths, metrics, world
        self.trainer = trainer
        self.difficulty_loaders = difficulty_loaders

    def record_epoch(self, record: dict[str, Any]) -> None:
        if self.difficulty_loaders is not None:
            record["difficulty"] = {}
            for split, loader in self.difficulty_loaders.items():
                # fit has just predicted the validation split; the weights are unchanged
                pred = (
                    self.trainer.last_valid_predictions
                    if split == "valid"
                    else self.trainer.predict(loader)
                )
                record["difficulty"][split] = difficulty_counts(pred.label, pred.logit)
        self.metrics["epochs"].append(record)

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        w, metrics = self.world, self.metrics
        rng_by_rank = w.gather(checkpoint["rng"])  # collective: every rank takes part
        if not w.is_writer:
            return
        if w.distributed:
            checkpoint["rng_by_rank"] = rng_by_rank
        start = time.perf_counter()
        checkpoint["metrics"] = {k: v for k, v in metrics.items() if k != "epochs"}
        record = metrics["epochs"][-1]
        path = self.paths.checkpoint_for(record["epoch"])
        atomic_torch_save(checkpoint, path)
        for hook in list(_AFTER_CHECKPOINT):
            hook(record["epoch"], path)
        self.paths.remove_older_checkpoints(record["epoch"])
        record["checkpoint_seconds"] = time.perf_counter() - start
        self.write_metrics()
        for epoch_hook in list(_AFTER_EPOCH):
            epoch_hook(record, metrics)

    def write_metrics(self) -> None:
        write_json_atomic(self.metrics, self.paths.partial / METRICS_FILE)

    def finish(self, model: nn.Module) -> None:
        """The best weights and the final metrics (rank 0 only)."""
        if not self.world.is_writer:
            return
        # CPU tensors: a run trained on a GPU loads anywhere
        weights = {k: v.cpu() for k, v in model.state_dict().items()}
        atomic_torch_save(weights, self.paths.partial / MODEL_FILE)
        trainer = self.trainer
        if trainer is not None and getattr(trainer, "best_optimizers_known", False):
            # what a child run with train.init_optimizer starts from (tf4ctr.run.warm_start)
            states = [_to_cpu(state) for state in trainer.best_optimizer_states()]
            atomic_torch_save(
                {"format": 1, "best_epoch": self.metrics.get("best_epoch"), "optimizers": states},
                self.paths.partial / OPTIMIZER_FILE,
            )
        self.write_metrics()


def _to_cpu(value: Any) -> Any:
    """An optimizer state dict with every tensor on the CPU (a GPU run's loads anywhere)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value
