"""Shared fixtures for the data-layer tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

# Real data sits beside the repository (never inside it); see shared/data/README.md.
_DEFAULT_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_data_dir() -> Path:
    """The read-only real-data folder, overridable with TF4CTR_SHARED_DATA."""
    override = os.environ.get("TF4CTR_SHARED_DATA")
    return Path(override) if override else _DEFAULT_SHARED


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found: {path}")
    return path


TRAIN_CSV = """label,user,item,price
1,u1,i1,1.5
0,u1,i2,2.0
1,u2,i1,
0,u3,i3,4.0
1,u2,i1,0.5
0,u1,i2,1.0
"""
VALID_CSV = """label,user,item,price
1,u1,i1,1.0
0,u4,i9,2.0
0,u2,i2,3.0
"""
TEST_CSV = """label,user,item,price
0,u3,i1,1.0
1,u2,i3,
"""


@pytest.fixture
def small_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Writes a tiny three-split CSV dataset plus its YAML; returns the YAML path.

    Keyword arguments override top-level config keys; ``train``/``valid``/``test``
    override the CSV texts.
    """

    def make(
        *, train: str = TRAIN_CSV, valid: str = VALID_CSV, test: str = TEST_CSV, **overrides: object
    ) -> Path:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        for name, text in (("train", train), ("valid", valid), ("test", test)):
            (data / f"{name}.csv").write_text(text, encoding="utf-8")
        cfg: dict[str, object] = {
            "data_format": "csv",
            "train_data": "data/train.csv",
            "valid_data": "data/valid.csv",
            "test_data": "data/test.csv",
            "min_categr_count": 1,
            "feature_cols": [
                {"name": ["user", "item"], "active": True, "dtype": "str", "type": "categorical"},
                {"name": "price", "active": True, "dtype": "float", "type": "numeric"},
            ],
            "label_col": {"name": "label", "dtype": "float"},
            "group_col": "user",
        }
        cfg.update(overrides)
        path = tmp_path / "small.yaml"
        path.write_text(yaml.safe_dump({"small": cfg}, sort_keys=False), encoding="utf-8")
        return path

    return make
