"""Scoring a large table offline, on many machines: tf4ctr's scoring inside Ray Data.

A table too large for one process belongs to an engine that already splits, schedules and
retries work across machines; tf4ctr only supplies the per-batch function. Ray Data's
``map_batches`` takes a class, builds one instance per actor (the ONNX Runtime session and the
RowEncoder are loaded once per actor, not per batch), and hands it column batches::

    import ray
    from tf4ctr.server.offline import BatchScorer

    ds = ray.data.read_parquet("s3://bucket/requests/")
    scored = ds.map_batches(
        BatchScorer, fn_constructor_args=("model.onnx",), batch_format="numpy",
        concurrency=8, batch_size=65_536,
    )
    scored.write_parquet("s3://bucket/scores/")

Only numpy, onnxruntime and :mod:`tf4ctr.serving` run inside the actors (no torch, no web
stack). The model file and its ``.preprocessor.json`` must be readable on every node.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tf4ctr.serving import RowEncoder

__all__ = ["BatchScorer"]


class BatchScorer:
    """Column batch (``{field: array}``) -> the same batch plus a ``probability`` column."""

    def __init__(
        self, model_file: str | Path, threads: int = 1, output: str = "probability"
    ) -> None:
        import onnxruntime as ort

        model_file = Path(model_file)
        self.encoder = RowEncoder.from_file(
            model_file.with_name(model_file.name + ".preprocessor.json")
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # one per actor: Ray runs one actor per core
        self.session = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.output = output

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        columns = {name: np.asarray(values) for name, values in batch.items()}
        size = len(next(iter(columns.values()))) if columns else 0
        names = list(columns)
        rows = [
            {name: _plain(columns[name][i]) for name in names} for i in range(size)
        ]  # RowEncoder takes row dicts; Python scalars key the vocabulary like the CSV's text
        categorical, numeric = self.encoder.encode(rows)
        scores = self.session.run(None, {"categorical": categorical, "numeric": numeric})[0]
        return {**columns, self.output: scores.reshape(-1)}


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a CSV reader would give (None for a masked/NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value
