"""Preprocessor: index convention, min counts, OOV, bucketing, numeric passthrough, state round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from tf4ctr.data.buckets import criteo_log_bucket, criteo_log_bucket_fuxictr
from tf4ctr.data.encoded import FeatureSchema, FieldInfo
from tf4ctr.data.preprocess import NUMERIC_BUCKETERS, Preprocessor
from tf4ctr.data.schema import DatasetConfig, load_dataset_config
from tf4ctr.errors import DataError


def make_config(
    features: list[dict], *, min_count: int = 1, group: str | None = None
) -> DatasetConfig:
    return load_dataset_config(
        {
            "name": "t",
            "train_data": "/x/train.csv",
            "valid_data": "/x/valid.csv",
            "test_data": "/x/test.csv",
            "min_categr_count": min_count,
            "feature_cols": features,
            "label_col": {"name": "label"},
            "group_col": group,
        }
    )


def table(**columns: list) -> pa.Table:
    n = len(next(iter(columns.values())))
    columns.setdefault("label", [0.0] * n)
    return pa.table(columns)


def test_min_count_and_oov_exact_indices() -> None:
    cfg = make_config([{"name": "a", "type": "categorical"}], min_count=2)
    train = table(a=["x", "y", "x", "z", "y", "x", None, ""])
    prep = Preprocessor(cfg).fit(train)
    # x (3) -> 2, y (2) -> 3; z (1 < min count), missing and empty -> OOV 1.
    assert prep.transform(train).categorical[:, 0].tolist() == [2, 3, 2, 1, 3, 2, 1, 1]
    assert prep.schema.vocab_sizes == [4]
    valid = table(a=["y", "never-seen", "x", "z"])
    assert prep.transform(valid).categorical[:, 0].tolist() == [3, 1, 2, 1]


def test_ties_broken_by_raw_string_and_deterministic() -> None:
    cfg = make_config([{"name": "a", "type": "categorical"}])
    train = table(a=["b", "c", "a", "b", "a", "c", "d"])
    prep = Preprocessor(cfg).fit(train)
    assert prep.state_dict()["vocabularies"]["a"] == ["a", "b", "c", "d"]
    shuffled = train.take(pa.array([6, 5, 4, 3, 2, 1, 0]))
    assert (
        Preprocessor(cfg).fit(shuffled).state_dict()["vocabularies"]
        == prep.state_dict()["vocabularies"]
    )


def test_per_field_min_count_override_and_padding_never_produced() -> None:
    cfg = make_config(
        [
            {"name": "a", "type": "categorical", "min_categr_count": 3},
            {"name": "b", "type": "categorical"},
        ],
        min_count=2,
    )
    train = table(a=["p", "p", "q", "q", "q", "r"], b=["p", "p", "q", "q", "q", "r"])
    prep = Preprocessor(cfg).fit(train)
    enc = prep.transform(train).categorical
    assert enc[:, 0].tolist() == [1, 1, 2, 2, 2, 1]
    assert enc[:, 1].tolist() == [3, 3, 2, 2, 2, 1]
    assert enc.dtype == np.int32 and enc.flags["C_CONTIGUOUS"]
    assert (enc != 0).all()


def test_fill_na_makes_missing_a_token() -> None:
    cfg = make_config([{"name": "a", "type": "categorical", "fill_na": "__na__"}])
    train = table(a=["x", None, "", None])
    prep = Preprocessor(cfg).fit(train)
    assert prep.state_dict()["vocabularies"]["a"] == ["__na__", "x"]
    assert prep.transform(train).categorical[:, 0].tolist() == [3, 2, 2, 2]


def test_criteo_log_bucket_hand_computed() -> None:
    x = np.array([0, 1, 2, 3, 10, 1000, np.nan, -1, 2.5])
    # floor(ln(3)^2) = floor(1.207) = 1; floor(ln(10)^2) = floor(5.30) = 5;
    # floor(ln(1000)^2) = floor(47.7) = 47; ln(2.5)^2 = 0.84 -> 0.
    assert math.floor(math.log(3) ** 2) == 1 and math.floor(math.log(1000) ** 2) == 47
    paper = criteo_log_bucket(x)
    np.testing.assert_array_equal(paper, [1, 1, 1, 1, 5, 47, np.nan, 1, 0])
    fuxi = criteo_log_bucket_fuxictr(x)
    np.testing.assert_array_equal(fuxi, [0, 1, 2, 1, 5, 47, np.nan, -1, 0])
    assert NUMERIC_BUCKETERS["convert_to_bucket"] is criteo_log_bucket_fuxictr


def test_bucketed_field_is_categorical() -> None:
    cfg = make_config(
        [
            {
                "name": "I1",
                "type": "categorical",
                "dtype": "float",
                "preprocess": "criteo_log_bucket",
            },
            {
                "name": "I2",
                "type": "categorical",
                "dtype": "float",
                "preprocess": "criteo_log_bucket_fuxictr",
            },
            {
                "name": "I3",
                "type": "categorical",
                "dtype": "float",
                "preprocess": "criteo_log_bucket_fuxictr",
                "fill_na": 0,
            },
        ]
    )
    col = [0.0, 3.0, 10.0, 1000.0, 1000.0, None]
    prep = Preprocessor(cfg).fit(table(I1=col, I2=col, I3=col))
    vocab = prep.state_dict()["vocabularies"]
    # Tokens "1" x2, "47" x2, "5" x1: count, then text, decides the order.
    assert vocab["I1"] == ["1", "47", "5"]
    assert vocab["I2"] == ["47", "0", "1", "5"]
    assert vocab["I3"] == ["0", "47", "1", "5"]
    enc = prep.transform(table(I1=col, I2=col, I3=col)).categorical
    assert enc[:, 0].tolist() == [2, 2, 4, 3, 3, 1]
    assert enc[:, 1].tolist() == [3, 4, 5, 2, 2, 1]
    assert enc[:, 2].tolist() == [2, 4, 5, 3, 3, 2]
    assert prep.schema.numeric == ()


def test_numeric_passthrough_and_field_order() -> None:
    cfg = make_config(
        [
            {"name": "p", "type": "numeric"},
            {"name": "a", "type": "categorical"},
            {"name": "q", "type": "numeric", "fill_na": 7},
        ]
    )
    t = table(p=[1.5, None, 3.0], a=["x", "x", "y"], q=[None, 2.0, float("nan")])
    prep = Preprocessor(cfg).fit(t)
    enc = prep.transform(t)
    assert enc.numeric.dtype == np.float32 and enc.numeric.shape == (3, 2)
    np.testing.assert_array_equal(enc.numeric, [[1.5, 7.0], [0.0, 2.0], [3.0, 7.0]])
    assert [f.name for f in prep.schema.fields] == ["a", "p", "q"]
    assert prep.schema.vocab_sizes == [4]


def test_no_numeric_fields_gives_empty_matrix() -> None:
    cfg = make_config([{"name": "a", "type": "categorical"}])
    enc = Preprocessor(cfg).fit(table(a=["x"])).transform(table(a=["x", "y"]))
    assert enc.numeric.shape == (2, 0) and enc.numeric.dtype == np.float32
    assert enc.label.dtype == np.float32 and len(enc) == 2 and enc.group is None


def test_group_ids() -> None:
    cfg = make_config([{"name": "a", "type": "categorical"}], group="g")
    t = table(a=["x"] * 5, g=["u1", "u2", "u1", None, "u3"])
    enc = Preprocessor(cfg).fit(t).transform(t)
    assert enc.group is not None and enc.group.dtype == np.int64
    g = enc.group.tolist()
    assert g[0] == g[2] and len(set(g)) == 4


def test_labels() -> None:
    cfg = make_config([{"name": "a", "type": "categorical"}])
    prep = Preprocessor(cfg).fit(table(a=["x"]))
    no_label = pa.table({"a": ["x", "y"]})
    np.testing.assert_array_equal(prep.transform(no_label, require_label=False).label, [0.0, 0.0])
    grouped = Preprocessor(make_config([{"name": "a", "type": "categorical"}], group="g")).fit(
        table(a=["x"], g=["u"])
    )
    assert grouped.transform(no_label, require_label=False).group is None
    with pytest.raises(DataError, match=r"^in\.csv: missing column 'label'"):
        prep.transform(no_label, source="in.csv")
    with pytest.raises(DataError, match=r"row 2: label 'label' must be 0 or 1, found 5"):
        prep.transform(pa.table({"a": ["x", "y"], "label": [1.0, 5.0]}))
    with pytest.raises(DataError, match=r"missing column 'a'"):
        prep.transform(pa.table({"label": [1.0]}))


def test_state_dict_round_trip_transforms_identically() -> None:
    cfg = make_config(
        [
            {"name": ["a", "b"], "type": "categorical"},
            {
                "name": "I1",
                "type": "categorical",
                "dtype": "float",
                "preprocess": "criteo_log_bucket",
            },
            {"name": "p", "type": "numeric", "fill_na": 1},
        ],
        min_count=2,
        group="a",
    )
    rng = np.random.default_rng(0)
    t = table(
        a=[str(v) for v in rng.integers(0, 20, 500)],
        b=[str(v) for v in rng.integers(0, 50, 500)],
        I1=rng.exponential(100, 500).tolist(),
        p=rng.normal(size=500).tolist(),
    )
    prep = Preprocessor(cfg).fit(t)
    state = json.loads(json.dumps(prep.state_dict()))
    again = Preprocessor.from_state_dict(state)
    assert again.schema == prep.schema
    x, y = prep.transform(t), again.transform(t)
    for name in ("categorical", "numeric", "label", "group"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_schema_dict_round_trip_and_unfitted() -> None:
    schema = FeatureSchema((FieldInfo("a", "categorical", 5), FieldInfo("p", "numeric", 0)))
    assert FeatureSchema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    assert schema.vocab_sizes == [5] and schema.numeric == (FieldInfo("p", "numeric", 0),)
    prep = Preprocessor(make_config([{"name": "a", "type": "categorical"}]))
    with pytest.raises(RuntimeError, match="not fitted"):
        prep.transform(table(a=["x"]))


def test_transform_with_a_callers_pool_encodes_the_same() -> None:
    """Scoring passes one field pool for a whole file (issue 31.5): same arrays as without."""
    from tf4ctr.data.preprocess import field_threads

    cfg = make_config(
        [
            {"name": "a", "type": "categorical"},
            {"name": "b", "type": "categorical"},
            {"name": "n", "type": "numeric"},
        ]
    )
    rng = np.random.default_rng(0)
    train = table(
        a=[f"a{i}" for i in rng.integers(0, 50, 300)],
        b=[f"b{i}" for i in rng.integers(0, 9, 300)],
        n=rng.normal(size=300).tolist(),
    )
    prep = Preprocessor(cfg).fit(train)
    block = table(
        a=[f"a{i}" for i in rng.integers(0, 80, 40)],
        b=[f"b{i}" for i in rng.integers(0, 12, 40)],
        n=rng.normal(size=40).tolist(),
    )
    alone = prep.transform(block)
    with field_threads(3) as pool:
        assert pool is not None or pa.cpu_count() < 2
        pooled = prep.transform(block, pool=pool)
    assert np.array_equal(alone.categorical, pooled.categorical)
    assert np.array_equal(alone.numeric, pooled.numeric)
    assert np.array_equal(alone.label, pooled.label)
    assert (alone.categorical == 1).any() and (alone.categorical > 1).any()  # OOV and known
