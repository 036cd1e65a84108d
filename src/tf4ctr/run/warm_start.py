"""Continual training: a run that starts from a finished run's weights (``train.init_from``).

New days of logs bring new users and items; the ones already known keep what they learned.
The rules:

* The parent is a finished run (its config, preprocessing, weights and metrics are there),
  and not the run being written.
* The model section is the parent's, key for key: the weights must fit the same structure.
* The dataset reads the same fields the same way (:mod:`tf4ctr.data.extend`). Each vocabulary
  is the parent's, extended by the new train split's values that pass ``min_categr_count``:
  a known category keeps its index and its learned table row, a new one gets a new row,
  initialised as a fresh model's would be. Numeric scalers stay the parent's.
* Every other parameter and buffer (MLPs, batch-norm statistics, fusion weights) is copied.
* The optimizer starts fresh, as a new run's does (its moments describe the parent's data).
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
from tf4ctr.rundir import CONFIG_FILE, METRICS_FILE, MODEL_FILE, PREPROCESSOR_FILE


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
    parent = load_run(run_dir)
    ours, theirs = config.model, parent.config.model
    for key in sorted(ours.keys() | theirs.keys()):
        if ours.get(key) != theirs.get(key):
            raise ConfigError(
                f"{where}model.{key} is {ours.get(key)!r} here, {theirs.get(key)!r} in the parent "
                f"run {run_dir.name}: a warm start needs the same model structure"
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
