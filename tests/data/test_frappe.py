"""The real Frappe_x1 (rebuilt train) from ../shared/data; skipped where that folder is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tf4ctr.data.formats import FRAPPE_FIELDS
from tf4ctr.data.readers import read_table
from tf4ctr.data.schema import load_dataset_config
from tf4ctr.data.store import prepare_dataset

FIELDS = list(FRAPPE_FIELDS)


@pytest.fixture
def frappe(shared_data: Path) -> Path:
    folder = shared_data / "Frappe_x1_rebuilt"
    if not (folder / "train.csv").is_file():
        pytest.skip(f"Frappe_x1_rebuilt not found under {shared_data}")
    return folder


def test_prepare_frappe_min_count_2(frappe: Path, tmp_path: Path) -> None:
    # FuxiCTR form, as in its dataset_config.yaml (dtype float on index columns included).
    cfg = load_dataset_config(
        {
            "Frappe_x1": {
                "data_root": "../data/Frappe/",
                "data_format": "csv",
                "train_data": str(frappe / "train.csv"),
                "valid_data": str(frappe / "valid.csv"),
                "test_data": str(frappe / "test.csv"),
                "min_categr_count": 2,
                "feature_cols": [
                    {"name": FIELDS, "active": True, "dtype": "float", "type": "categorical"}
                ],
                "label_col": {"name": "label", "dtype": "float"},
                "group_col": "user",
            }
        }
    )
    ds = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (202_027, 57_722, 28_860)
    assert [f.name for f in ds.schema.categorical] == FIELDS and ds.schema.numeric == ()
    assert ds.train.label.mean() == pytest.approx(67_604 / 202_027, abs=1e-6)
    assert abs(ds.train.label.mean() - 0.3346) < 1e-4
    # Small fields are complete in train (vocab + padding + OOV).
    sizes = dict(zip(FIELDS, ds.schema.vocab_sizes, strict=True))
    assert sizes["daytime"] == 7 + 2 and sizes["weekday"] == 7 + 2 and sizes["isweekend"] == 2 + 2
    for split in (ds.train, ds.valid, ds.test):
        assert split.categorical.min() >= 1
        assert split.group is not None and len(np.unique(split.group)) > 100
    # Train has no OOV among fields whose every value occurs twice or more.
    assert (ds.train.categorical[:, 2:8] > 1).all()
    again = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again.test.categorical, ds.test.categorical)


def test_read_frappe_crlf(frappe: Path) -> None:
    cfg = load_dataset_config(
        {
            "name": "frappe",
            "train_data": str(frappe / "train.csv"),
            "valid_data": str(frappe / "valid.csv"),
            "test_data": str(frappe / "test.csv"),
            "feature_cols": [{"name": FIELDS, "type": "categorical"}],
            "label_col": {"name": "label"},
        }
    )
    table = read_table(frappe / "test.csv", cfg)
    assert table.num_rows == 28_860
    # CRLF must not leave "\r" on the last column.
    assert not any(v.endswith("\r") for v in table["city"].unique().to_pylist())
