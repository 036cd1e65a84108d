"""Continual training: a run that starts from a finished run's weights (``train.init_from``).

New days of logs bring new users and items; the ones already known keep what they learned.
The rules:

* The parent is a finished run (its config, preprocessing, weights and metrics are there),
  and not the run being written.
* The model section is the parent's, key for key: the weights must fit the same structure.
* The dataset reads the same fields the same way (:mod:`tf4ctr.data.extend`). Each vocabulary
  is the parent's, extended by the new train split's values that pass ``min_categr_count``:
  a known category keeps its index and its learned table row, a new one gets a new row,
  initialised as a fresh model's would be. Numeric scalers stay the parent's (a number means
  to the new model what it meant to the parent), or with ``train.init_numeric: refresh`` are
  fitted on the new train split (for numbers that drift: the learned weights then see the
  new scale at once, with no step to adapt).
* Every other parameter and buffer (MLPs, batch-norm statistics, fusion weights) is copied.
* The optimizer starts fresh, as a new run's does (its moments describe the parent's data),
  unless ``train.init_optimizer``: then every optimizer starts from the parent's state at its
  best epoch (``optimizer.pt``, written beside ``model.pt``): Adam's moments and step counts,
  a known embedding row's moments moved with the row, a new row's at zero. The learning rate
  and the other hyperparameters are this run's.
* The run records its lineage in metrics.json: the parent's folder and name, and the SHA-256
  of its config.yaml and model.pt, so a chain of daily models can be traced back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tf4ctr.config import RunConfig
from tf4ctr.data.readers import sha256_file
from tf4ctr.errors import ConfigError, UserError
from tf4ctr.nn import FeatureEmbedding
from tf4ctr.run.scoring import LoadedRun, load_run
from tf4ctr.rundir import CONFIG_FILE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, PREPROCESSOR_FILE


@dataclass
class Parent:
    """The finished run a warm start begins from, and the lineage recorded for it."""

    run: LoadedRun
    lineage: dict[str, Any]


def load_parent(config: RunConfig, own_run_dir: Path) -> Parent | None:
    """The parent named by ``train.init_from`` (None without one), checked against ``config``."""
    if config.train.init_from is None:
        return None
    where = f"{config.origin('train.init_from')}train.init_from: "
    run_dir = Path(config.train.init_from).expanduser().resolve()
    needed = (CONFIG_FILE, PREPROCESSOR_FILE, MODEL_FILE, METRICS_FILE)
    if not run_dir.is_dir() or any(not (run_dir / name).is_file() for name in needed):
        raise UserError(
            f"{where}{run_dir} is not a finished run (expected {', '.join(needed)} in it)"
        )
    if run_dir == own_run_dir.expanduser().resolve():
        raise UserError(f"{where}{run_dir} is the run being trained; start from another one")
    if config.train.init_optimizer and not (run_dir / OPTIMIZER_FILE).is_file():
        raise UserError(
            f"{config.origin('train.init_optimizer')}train.init_optimizer: {run_dir / OPTIMIZER_FILE}"
            " not found: the parent kept no optimizer state (a run finished before 2026-12-07,"
            " or resumed from a checkpoint of then); leave init_optimizer false"
        )
    parent = load_run(run_dir)
    ours, theirs = config.model, parent.config.model
    for key in sorted(ours.keys() | theirs.keys()):
        if ours.get(key) != theirs.get(key):
            raise ConfigError(
                f"{where}model.{key} is {ours.get(key)!r} here, {theirs.get(key)!r} in the parent "
                f"run {run_dir.name}: a warm start needs the same model structure"
            )
    if config.train.init_optimizer and config.train.sparse_embedding != (
        parent.config.train.sparse_embedding
    ):
        raise ConfigError(
            f"{config.origin('train.init_optimizer')}train.init_optimizer: train.sparse_embedding"
            f" is {str(config.train.sparse_embedding).lower()} here, "
            f"{str(parent.config.train.sparse_embedding).lower()} in the parent run "
            f"{run_dir.name}: its optimizer state does not fit this run's optimizers"
        )
    lineage = {
        "run_dir": str(run_dir),
        "name": parent.config.name,
        "config_sha256": sha256_file(run_dir / CONFIG_FILE),
        "model_sha256": sha256_file(run_dir / MODEL_FILE),
    }
    return Parent(parent, lineage)


def _field_rows(table: FeatureEmbedding) -> list[tuple[int, int]]:
    """(first row, rows) of each field's block in a table."""
    starts = [int(s) for s in table.offsets.tolist()]
    ends = [*starts[1:], table.weight.shape[0]]
    return [(s, e - s) for s, e in zip(starts, ends, strict=True)]


@torch.no_grad()
def copy_weights(parent: nn.Module, model: nn.Module) -> int:
    """Copy ``parent``'s weights into ``model``, whose vocabularies extend the parent's; returns
    the number of new table rows, left as ``model`` initialised them."""
    parents = dict(parent.named_modules())
    tables: set[str] = set()
    new_rows = 0
    for name, module in model.named_modules():
        if not isinstance(module, FeatureEmbedding):
            continue
        old = parents.get(name)
        if not isinstance(old, FeatureEmbedding):
            raise ConfigError(f"init_from: the parent model has no embedding table {name!r}")
        fields, known = _field_rows(module), _field_rows(old)
        if len(fields) != len(known) or any(
            n < k for (_, n), (_, k) in zip(fields, known, strict=False)
        ):
            raise ConfigError(f"init_from: table {name!r} does not extend the parent's")
        for (start, rows), (old_start, old_rows) in zip(fields, known, strict=True):
            module.weight[start : start + old_rows] = old.weight[old_start : old_start + old_rows]
            new_rows += rows - old_rows
        if module.numeric_weight is not None:
            module.numeric_weight.copy_(old.numeric_weight)
        tables.add(f"{name}.weight" if name else "weight")
        tables.add(f"{name}.numeric_weight" if name else "numeric_weight")
    theirs = parent.state_dict()
    for key, value in model.state_dict().items():
        if key in tables:
            continue
        if key not in theirs or theirs[key].shape != value.shape:
            found = "missing" if key not in theirs else tuple(theirs[key].shape)
            raise ConfigError(
                f"init_from: {key} is {tuple(value.shape)} here, {found} in the parent model"
            )
        value.copy_(theirs[key])
    return new_rows


def parent_optimizer_states(parent: Parent, where: str = "train.init_optimizer: ") -> list[Any]:
    """The parent's optimizer state dicts at its best epoch (its ``optimizer.pt``, whose
    presence :func:`load_parent` checked)."""
    path = parent.run.run_dir / OPTIMIZER_FILE
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return list(saved["optimizers"])
    except Exception as exc:  # truncated or not written by tf4ctr
        raise UserError(
            f"{where}{path}: not a readable optimizer file ({type(exc).__name__})"
        ) from None


@torch.no_grad()
def carry_optimizers(
    saved: list[Any], parent: nn.Module, model: nn.Module, optimizers: list[torch.optim.Optimizer]
) -> None:
    """Load ``saved`` (the parent's optimizer state dicts) into ``optimizers`` of ``model``,
    whose tables extend ``parent``'s: a table's per-row state (Adam's moments) is moved to the
    rows' places in the extended table, new rows get zeros; every other state is copied."""
    if len(saved) != len(optimizers):
        raise ConfigError(
            f"init_optimizer: the parent run has {len(saved)} optimizer(s), this run "
            f"{len(optimizers)} (train.sparse_embedding differs)"
        )
    parents = dict(parent.named_modules())
    tables: dict[int, tuple[FeatureEmbedding, FeatureEmbedding]] = {}
    for name, module in model.named_modules():
        if isinstance(module, FeatureEmbedding) and isinstance(parents.get(name), FeatureEmbedding):
            tables[id(module.weight)] = (module, parents[name])
    for opt, theirs in zip(optimizers, saved, strict=True):
        ours = opt.state_dict()
        params = [p for group in opt.param_groups for p in group["params"]]
        indices = [i for group in ours["param_groups"] for i in group["params"]]
        their_indices = [i for group in theirs["param_groups"] for i in group["params"]]
        if len(their_indices) != len(indices):
            raise ConfigError(
                f"init_optimizer: the parent's optimizer holds {len(their_indices)} parameters, "
                f"this run's {len(indices)}"
            )
        state: dict[int, dict[str, Any]] = {}
        for param, index, their_index in zip(params, indices, their_indices, strict=True):
            if their_index not in theirs["state"]:
                continue  # a parameter the parent never stepped: fresh here too
            state[index] = {
                key: _fit_state(value, param, tables.get(id(param)), key)
                for key, value in theirs["state"][their_index].items()
            }
        ours["state"] = state
        opt.load_state_dict(ours)


def _fit_state(
    value: Any,
    param: torch.Tensor,
    table: tuple[FeatureEmbedding, FeatureEmbedding] | None,
    key: str,
) -> Any:
    """One saved state entry, shaped for ``param``."""
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value  # step counts
    if value.shape == param.shape:
        return value.clone()
    if table is not None and value.dim() == 2 and value.shape[1] == param.shape[1]:
        module, old = table
        grown = torch.zeros(param.shape, dtype=value.dtype)
        for (start, _), (old_start, old_rows) in zip(
            _field_rows(module), _field_rows(old), strict=True
        ):
            grown[start : start + old_rows] = value[old_start : old_start + old_rows]
        return grown
    raise ConfigError(
        f"init_optimizer: the parent's optimizer state {key!r} is {tuple(value.shape)}, "
        f"its parameter here {tuple(param.shape)}"
    )
