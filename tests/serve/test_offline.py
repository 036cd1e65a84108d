"""Offline scoring with tf4ctr.server.offline.BatchScorer: on a column batch directly, and
inside Ray Data's map_batches on a local Ray (skipped when ray is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serve.conftest import Trained, rows_as_sent
from tf4ctr.server.offline import BatchScorer


def _columns(rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    return {name: np.array([r[name] for r in rows]) for name in rows[0]}


def test_a_column_batch_scores_like_tf4ctr_predict(trained: Trained):
    rows = rows_as_sent(trained.rows)
    out = BatchScorer(trained.onnx)(_columns(rows))
    assert set(out) == {"user", "item", "ctx", "price", "probability"}
    assert np.abs(out["probability"] - trained.expected).max() <= 1e-6


def test_inside_ray_data_map_batches(trained: Trained):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.from_items(rows_as_sent(trained.rows))
        scored = ds.map_batches(
            BatchScorer, fn_constructor_args=(str(trained.onnx),), batch_format="numpy",
            batch_size=200, concurrency=1,
        )  # fmt: skip
        got = np.array([r["probability"] for r in scored.take_all()])
    finally:
        ray.shutdown()
    assert np.abs(np.sort(got) - np.sort(trained.expected)).max() <= 1e-6
