"""Shared fixtures: a tiny labelled CSV dataset and its run config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Test models are tiny: one thread avoids oversubscribing the cores when
# pytest, BLAS and the OS all want them (10-20x faster on a busy 2-core box).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TF4CTR_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_csv(path: Path, n: int, seed: int, *, crlf: bool = False) -> None:
    """Rows with a learnable signal: click when user and item 'match'."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 30, n)
    item = rng.integers(0, 40, n)
    ctx = rng.integers(0, 4, n)
    price = rng.random(n).round(3)
    logit = (
        2.0 * (user < 12)
        - 2.0 * (item % 2)
        + 0.5 * (ctx == 1)
        + np.where((user + item) % 3 == 0, 0.8, -0.4)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    end = "\r\n" if crlf else "\n"
    lines = ["label,user,item,ctx,price"]
    lines += [
        f"{a},u{b},i{c},{d},{e}"
        for a, b, c, d, e in zip(label, user, item, ctx, price, strict=True)
    ]
    path.write_text(end.join(lines) + end)


DATASET_YAML = """\
tiny:
  train_data: train.csv
  valid_data: valid.csv
  test_data: test.csv
  min_categr_count: 1
  feature_cols:
    - {name: [user, item, ctx], type: categorical, dtype: str}
    - {name: price, type: numeric, dtype: float}
  label_col: {name: label, dtype: float}
  group_col: user
"""

RUN_YAML = """\
name: tiny-run
dataset: dataset.yaml
model: {name: tf4ctr, embedding_dim: 8, simple_hidden_units: [16], complex_hidden_units: [16, 16]}
loss: {name: tf, alpha: 0.25, c: 0.7, gamma: 1.0, embedding_l2: 0.0}
train: {batch_size: 256, epochs: 4, lr: 1.0e-2, patience: 2, progress: false}
output_dir: runs
cache_dir: cache
"""


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A directory with train/valid/test CSVs, a dataset YAML and a run YAML."""
    write_csv(tmp_path / "train.csv", 3000, 0)
    write_csv(tmp_path / "valid.csv", 800, 1, crlf=True)
    write_csv(tmp_path / "test.csv", 800, 2)
    (tmp_path / "dataset.yaml").write_text(DATASET_YAML)
    (tmp_path / "run.yaml").write_text(RUN_YAML)
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA
