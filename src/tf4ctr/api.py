"""tf4ctr from Python: train on in-memory tables and score them, in a few lines.

    import tf4ctr
    run = tf4ctr.fit("my_run.yaml", train=train_df, valid=valid_df, test=test_df)
    print(run.metrics["test"]["auc"])
    probabilities = run.predict(new_rows_df)        # numpy array, row for row
    run = tf4ctr.load("runs/my-first-run")          # the same object, from disk

Tables are pandas DataFrames, pyarrow Tables or dicts of columns (pandas stays optional), or
file paths. A run config given as a dict needs no file paths in its dataset part. In-memory
splits are written once to parquet under the cache folder (named by their content), so the
run goes through exactly the pipeline the command line uses: the same checks, the same cache,
a run directory that ``tf4ctr evaluate`` / ``predict`` read.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tf4ctr.config import apply_overrides, parse_run_config
from tf4ctr.data.schema import settings_of
from tf4ctr.errors import ConfigError, UserError
from tf4ctr.fileio import make_dir, read_yaml, write_atomic
from tf4ctr.rundir import METRICS_FILE

__all__ = ["Run", "fit", "load"]

_SPLITS = ("train", "valid", "test")


@dataclass
class Run:
    """A finished run: its directory, its metrics, and scoring of raw rows."""

    run_dir: Path
    metrics: dict[str, Any]
    _loaded: Any = field(default=None, repr=False)

    def _load(self) -> Any:
        from tf4ctr import run

        if self._loaded is None:
            self._loaded = run.load_run(self.run_dir)
        return self._loaded

    def _encode(self, rows: Any, *, require_label: bool) -> Any:
        from tf4ctr.data.readers import rows_table

        loaded = self._load()
        table = rows_table(rows, loaded.dataset, require_label=require_label)
        return loaded.preprocessor.transform(table, require_label=require_label)

    def predict(self, rows: Any, *, batch_size: int = 65_536) -> np.ndarray:
        """Click probabilities for raw rows (the label column may be absent), row for row."""
        import torch

        from tf4ctr import run
        from tf4ctr.data import BatchLoader

        split = self._encode(rows, require_label=False)
        logits = run.scoring_trainer(self._load()).predict(BatchLoader(split, batch_size)).logit
        return torch.sigmoid(torch.from_numpy(logits)).numpy().astype(np.float64)

    def evaluate(self, rows: Any, *, batch_size: int = 65_536) -> dict[str, float]:
        """AUC, gAUC (when the rows have the group column) and logloss of labelled rows."""
        from tf4ctr import run
        from tf4ctr.data import BatchLoader

        split = self._encode(rows, require_label=True)
        run.require_both_classes(split.label, "rows")
        return run.scoring_trainer(self._load()).evaluate(BatchLoader(split, batch_size))


def load(run_dir: str | Path) -> Run:
    """A finished run directory as a :class:`Run`."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir}: not a finished tf4ctr run (no {METRICS_FILE})") from None
    except ValueError:
        raise UserError(f"{run_dir / METRICS_FILE}: not valid JSON") from None
    return Run(run_dir, metrics)


def fit(
    config: str | Path | dict[str, Any],
    *,
    train: Any,
    valid: Any,
    test: Any,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool | None = None,
    init_from: str | Path | Run | None = None,
) -> Run:
    """Train a run config on the given splits and return the finished :class:`Run`.

    ``config`` is a run config file or mapping (``train.lr``-style ``overrides`` apply on
    top); each split is a table (pandas, pyarrow, dict of columns) or a file path.
    ``init_from``: a finished run (or its folder) to warm-start from, its vocabularies
    extended by these splits' new values (``train.init_from``; tf4ctr.run.warm_start).
    """
    from tf4ctr import run

    source = None
    if isinstance(config, dict):
        raw = copy.deepcopy(config)
    else:
        source = Path(config).resolve()
        raw = read_yaml(source)
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level")
    raw = apply_overrides(raw, overrides or [])
    if init_from is not None:
        parent = getattr(init_from, "run_dir", init_from)
        raw.setdefault("train", {})
        if not isinstance(raw["train"], dict):
            raise ConfigError("train: expected a mapping")
        raw["train"]["init_from"] = str(Path(parent).resolve())
    base = source.parent if source is not None else Path.cwd()
    dataset = _dataset_mapping(raw.get("dataset"), base)
    settings, dataset_id = settings_of(dataset)
    settings = dict(settings)
    # Paths handed to fit in Python are the caller's, relative to the working folder, and
    # the cache is where run.train puts it (cache_dir from the working folder); only paths
    # written inside the config files are relative to those files.
    cache = Path(raw.get("cache_dir", ".tf4ctr-cache")).absolute()
    for split, rows in zip(_SPLITS, (train, valid, test), strict=True):
        settings[f"{split}_data"] = str(_as_file(rows, cache / "in-memory", split))
    settings["data_format"] = "auto"
    raw["dataset"] = settings if dataset_id is None else {dataset_id: settings}
    keys = {item.partition("=")[0]: item for item in overrides or []}
    parsed = parse_run_config(raw, source=source, overrides=keys)
    result = run.train(parsed, overwrite=overwrite, resume=resume, progress=progress)
    return Run(result.run_dir, result.metrics)


def _dataset_mapping(value: Any, base: Path) -> dict[str, Any]:
    """The dataset section as a mapping (read from its file when it names one)."""
    if value is None:
        raise ConfigError("dataset: missing required key (a dataset config file or mapping)")
    if isinstance(value, str | Path):
        path = Path(value) if Path(value).is_absolute() else base / value
        value = read_yaml(path, expected="a dataset config mapping")
    if not isinstance(value, dict):
        raise ConfigError("dataset: expected a dataset config file or mapping")
    return copy.deepcopy(value)


def _as_file(rows: Any, folder: Path, split: str) -> Path:
    """A split as a file: paths as given, tables written once as parquet named by content."""
    if isinstance(rows, str | Path):
        return Path(rows).absolute()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tf4ctr.data.readers import as_arrow

    table = as_arrow(rows, split)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]
    path = folder / f"{split}-{digest}.parquet"
    if not path.is_file():
        make_dir(folder, "cache_dir")
        write_atomic(path, lambda tmp: pq.write_table(table, tmp), suffix=".parquet")
    return path
