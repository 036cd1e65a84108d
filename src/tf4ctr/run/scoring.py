"""Scoring a finished run: load it from its directory alone, and evaluate or predict files
block by block, so memory holds one block of rows, not the file."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tf4ctr.config import RunConfig, parse_run_config
from tf4ctr.data import BatchLoader, DatasetConfig, EncodedSplit, Preprocessor, read_table
from tf4ctr.data.preprocess import distinct_values, field_threads
from tf4ctr.data.readers import iter_chunks
from tf4ctr.errors import ConfigError, UserError, first_message_line
from tf4ctr.fileio import write_atomic
from tf4ctr.models import build_model
from tf4ctr.run.resume import saved_config
from tf4ctr.run.setup import layer_options, require_both_classes, scoring_trainer
from tf4ctr.rundir import CONFIG_FILE, MODEL_FILE, PREPROCESSOR_FILE
from tf4ctr.train.trainer import Predictions, prediction_metrics


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    dataset: DatasetConfig
    preprocessor: Preprocessor
    model: nn.Module


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model and preprocessing of a finished run from its directory alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    for name in (CONFIG_FILE, PREPROCESSOR_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir / name}: missing (is {run_dir} a finished tf4ctr run?)")
    config = parse_run_config(saved_config(run_dir / CONFIG_FILE), source=run_dir / CONFIG_FILE)
    try:
        state = json.loads((run_dir / PREPROCESSOR_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{run_dir / PREPROCESSOR_FILE}: line {exc.lineno}: invalid JSON") from None
    preprocessor = Preprocessor.from_state_dict(state)
    dataset = preprocessor.config
    model = build_model(
        config.model_name,
        preprocessor.schema,
        layer_options=layer_options(config.train),
        **config.model_hparams,
    )
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


#: Text read per block when scoring. A block costs about ten times its size once parsed,
#: encoded and scored, so this bounds predict's memory above the model's: at 16 MiB a
#: 3M-row file peaked 1.34x above a 300k-row one (the smaller file fits one block); at
#: 2 MiB, 1.03x, and no slower (issue 30.7; tests/test_predict_memory.py).
SCORING_BLOCK_BYTES = 2 << 20


def encode_blocks(
    run: LoadedRun,
    path: Path,
    *,
    require_label: bool,
    block_bytes: int = SCORING_BLOCK_BYTES,
    group_values: Any = None,
    progress: bool = False,
) -> Iterator[EncodedSplit]:
    """The file's rows encoded block by block (memory holds one block, not the file).

    With ``progress`` (and a terminal), a bar in bytes of the file for a plain CSV, else in
    rows read."""
    from tf4ctr.data.read_progress import ReadBar

    path = Path(path)
    # One pool for the whole file: a field's lookup hashes its whole vocabulary once per
    # block, which on Criteo's vocabularies costs more than the block's own 11k rows; two
    # threads halve it (benchmarks/score_profile.py).
    fields = len(run.dataset.feature_cols)
    with (
        ReadBar(path, run.dataset, desc=f"scoring {path.name}", progress=progress) as bar,
        field_threads(fields) as pool,
    ):
        for table, first_line in iter_chunks(
            path,
            run.dataset,
            require_label=require_label,
            block_bytes=block_bytes,
            on_bytes=bar.on_bytes,
        ):
            bar.rows_read(table.num_rows)
            yield run.preprocessor.transform(
                table,
                require_label=require_label,
                source=path,
                first_row=first_line,
                group_values=group_values,
                pool=pool,
            )


def evaluate(
    run_dir: str | Path,
    *,
    files: dict[str, Path] | None = None,
    batch_size: int = 65_536,
    block_bytes: int = SCORING_BLOCK_BYTES,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics of a finished run on its valid/test files (or on the given labelled files).

    Files are read and scored block by block; only labels, logits and gAUC groups (a few
    bytes per row) are kept for the metrics.
    """
    run = load_run(run_dir)
    files = files or {"valid": run.dataset.valid_data, "test": run.dataset.test_data}
    trainer = scoring_trainer(run)
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
    block_bytes: int = SCORING_BLOCK_BYTES,
    progress: bool = True,
) -> int:
    """Score raw rows (label column optional), block by block, writing as it goes.

    The output is one ``probability`` column, row for row: parquet when ``output_path`` ends
    in .parquet or .pq, CSV otherwise, or CSV on standard output for ``-``. Memory does not
    grow with the number of rows. A file is written under a temporary name and renamed when
    complete. Returns the number of rows scored.
    """
    run = load_run(run_dir)
    trainer = scoring_trainer(run)
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
