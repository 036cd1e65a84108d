"""Real Criteo rows from ../shared/data/criteo_samples: bucketing and empty cells; skipped when absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tf4ctr.data.buckets import criteo_log_bucket
from tf4ctr.data.readers import read_table
from tf4ctr.data.schema import DatasetConfig, load_dataset_config
from tf4ctr.data.store import prepare_dataset

INTS = [f"I{i}" for i in range(1, 14)]
CATS = [f"C{i}" for i in range(1, 27)]


@pytest.fixture
def criteo_sample(shared_data: Path) -> Path:
    path = shared_data / "criteo_samples" / "deepctr_criteo_sample.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def _config(
    path: Path, preprocess: str, int_fill: float | None, cat_fill: str | None
) -> DatasetConfig:
    return load_dataset_config(
        {
            "Criteo_sample": {
                "data_format": "csv",
                "train_data": str(path),
                "valid_data": str(path),
                "test_data": str(path),
                "min_categr_count": 2,
                "feature_cols": [
                    {
                        "name": INTS,
                        "active": True,
                        "dtype": "float",
                        "type": "categorical",
                        "preprocess": preprocess,
                        "fill_na": int_fill,
                    },
                    {
                        "name": CATS,
                        "active": True,
                        "dtype": "str",
                        "type": "categorical",
                        "fill_na": cat_fill,
                    },
                ],
                "label_col": {"name": "label", "dtype": "float"},
            }
        }
    )


def test_criteo_fuxictr_form(criteo_sample: Path, tmp_path: Path) -> None:
    # FuxiCTR's own Criteo settings: its bucketer name, fill 0 for numbers and '' for ids.
    cfg = _config(criteo_sample, "convert_to_bucket", 0, "")
    ds = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    assert len(ds.train) == 200 and len(ds.schema.categorical) == 39
    vocab = ds.preprocessor.state_dict()["vocabularies"]
    # I1 has empty cells; filled with 0 they are the bucket "0", a real token.
    assert "0" in vocab["I1"]
    assert ds.train.categorical.min() >= 1


def test_criteo_paper_bucketing_matches_hand_computation(
    criteo_sample: Path, tmp_path: Path
) -> None:
    cfg = _config(criteo_sample, "criteo_log_bucket", None, None)
    table = read_table(criteo_sample, cfg)
    raw = table["I5"].to_numpy(zero_copy_only=False)
    ds = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    vocab = ds.preprocessor.state_dict()["vocabularies"]["I5"]
    j = [f.name for f in ds.schema.categorical].index("I5")
    codes = ds.train.categorical[:, j]
    for x, code in zip(raw[:50], codes[:50], strict=True):
        if np.isnan(x):
            assert code == 1
        elif code > 1:
            assert vocab[code - 2] == str(int(criteo_log_bucket(np.array([x]))[0]))
    # Missing ids stay missing (OOV) when no fill_na is given.
    c = [f.name for f in ds.schema.categorical].index("C19")
    missing = table["C19"].is_null().to_numpy(zero_copy_only=False)
    assert missing.any() and (ds.train.categorical[missing, c] == 1).all()
