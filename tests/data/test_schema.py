"""Dataset config loading: FuxiCTR form, normalisation, and one-line errors naming file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tf4ctr.data.schema import FeatureSpec, LabelSpec, load_dataset_config
from tf4ctr.errors import ConfigError

FUXICTR_YAML = """\
Frappe_x1:
    data_root: ../data/Frappe/
    data_format: csv
    train_data: data/train.csv
    valid_data: ./data/valid.csv
    test_data: {test}
    min_categr_count: 2
    feature_cols:
        - {{name: [user, item, daytime], active: True, dtype: float, type: categorical}}
        - {{name: cost, active: False, dtype: str, type: categorical}}
        - {{name: price, active: true, type: numeric, fill_na: 0}}
        - {{name: I1, type: categorical, dtype: float, preprocess: criteo_log_bucket, min_categr_count: 5}}
        - {{name: C1, type: categorical, dtype: str, fill_na: 0}}
    label_col: {{name: label, dtype: float}}
    group_id: user
"""


def write(tmp_path: Path, text: str, name: str = "frappe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fuxictr_form_loads(tmp_path: Path) -> None:
    test_path = tmp_path / "elsewhere" / "test.csv"
    cfg = load_dataset_config(write(tmp_path, FUXICTR_YAML.format(test=test_path)))
    assert cfg.name == "Frappe_x1"
    assert cfg.train_data == tmp_path / "data" / "train.csv"
    assert cfg.valid_data == tmp_path / "data" / "valid.csv"
    assert cfg.test_data == test_path
    assert cfg.source == tmp_path / "frappe.yaml"
    assert cfg.min_categr_count == 2
    assert cfg.group_col == "user"
    assert cfg.label_col == LabelSpec("label", "float")
    # The inactive 'cost' is dropped; a name list shares its settings.
    assert cfg.feature_names == ("user", "item", "daytime", "price", "I1", "C1")
    assert cfg.feature_cols[0] == FeatureSpec("user", "categorical", "float")
    assert cfg.feature_cols[3] == FeatureSpec("price", "numeric", "float", fill_na=0.0)
    assert cfg.feature_cols[4] == FeatureSpec(
        "I1", "categorical", "float", preprocess="criteo_log_bucket", min_categr_count=5
    )
    # A text-keyed field's fill value is the token it stands for.
    assert cfg.feature_cols[5].fill_na == "0"


def test_plain_mapping_and_round_trip(tmp_path: Path) -> None:
    raw = {
        "name": "tiny",
        "train_data": "a.csv",
        "valid_data": "b.csv",
        "test_data": "c.parquet",
        "feature_cols": [{"name": "x", "type": "categorical"}],
        "label_col": {"name": "y"},
    }
    cfg = load_dataset_config(raw, base_dir=tmp_path)
    assert cfg.train_data == tmp_path / "a.csv"
    assert cfg.group_col is None and cfg.source is None and cfg.data_format == "auto"
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    again = load_dataset_config(json.loads(json.dumps(d)))
    assert again == cfg
    assert again.to_dict() == d


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    text = "train_data: a.csv\nvalid_data: b.csv\ntest_data: c.csv\nfeature_cols: [{name: x, type: categorical}]\nlabel_col: {name: y}\n"
    assert load_dataset_config(write(tmp_path, text, "my_data.yaml")).name == "my_data"


BASE = {
    "train_data": "a.csv",
    "valid_data": "b.csv",
    "test_data": "c.csv",
    "feature_cols": [{"name": ["x", "z"], "type": "categorical"}],
    "label_col": {"name": "y"},
}


def _with(**changes: object) -> dict:
    d = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is None:
            d.pop(key)
        else:
            d[key] = value
    return d


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_with(feature_colz=[]), "unknown key 'ds.feature_colz' (expected one of:"),
        (_with(train_data=None), "missing required key 'ds.train_data'"),
        (
            _with(min_categr_count="two"),
            "key 'ds.min_categr_count': expected an integer >= 1, found 'two'",
        ),
        (_with(min_categr_count=True), "key 'ds.min_categr_count'"),
        (_with(data_format="h5"), "key 'ds.data_format': expected one of auto, csv, parquet"),
        (_with(feature_cols="x"), "key 'ds.feature_cols': expected a non-empty list"),
        (
            _with(feature_cols=[{"name": "x", "type": "categorical", "embedding_dim": 4}]),
            "unknown key 'ds.feature_cols[0].embedding_dim'",
        ),
        (_with(feature_cols=[{"name": "x"}]), "missing required key 'ds.feature_cols[0].type'"),
        (
            _with(feature_cols=[{"type": "categorical"}]),
            "missing required key 'ds.feature_cols[0].name'",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "sequence"}]),
            "key 'ds.feature_cols[0].max_len': expected a positive integer",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "sequence", "max_len": 3, "splitter": ""}]),
            "key 'ds.feature_cols[0].splitter': expected a non-empty string",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "sequence", "max_len": 3, "encoder": "GRU"}]),
            "key 'ds.feature_cols[0].encoder': expected one of sum, mean, MaskedSumPooling",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "categorical", "max_len": 3}]),
            "key 'ds.feature_cols[0].max_len': only sequence features take it",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "dense"}]),
            "key 'ds.feature_cols[0].type': expected one of",
        ),
        (
            _with(
                feature_cols=[
                    {"name": "x", "type": "categorical", "dtype": "float", "preprocess": "log2"}
                ]
            ),
            "key 'ds.feature_cols[0].preprocess': expected one of",
        ),
        (
            _with(
                feature_cols=[{"name": "x", "type": "numeric", "preprocess": "criteo_log_bucket"}]
            ),
            "key 'ds.feature_cols[0].preprocess': a bucketer makes a categorical field",
        ),
        (
            _with(
                feature_cols=[
                    {"name": "x", "type": "categorical", "preprocess": "criteo_log_bucket"}
                ]
            ),
            "key 'ds.feature_cols[0].dtype': preprocess 'criteo_log_bucket' reads numbers",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "numeric", "fill_na": "abc"}]),
            "key 'ds.feature_cols[0].fill_na': expected a finite number",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "categorical", "active": "yes"}]),
            "key 'ds.feature_cols[0].active': expected true or false",
        ),
        (
            _with(feature_cols=[{"name": ["x", "x"], "type": "categorical"}]),
            "feature 'x' is already defined in ds.feature_cols[0]",
        ),
        (
            _with(
                feature_cols=[
                    {"name": "x", "type": "categorical"},
                    {"name": "x", "type": "numeric"},
                ]
            ),
            "key 'ds.feature_cols[1].name': feature 'x' is already defined",
        ),
        (
            _with(feature_cols=[{"name": "x", "type": "categorical", "active": False}]),
            "every feature is inactive",
        ),
        (
            _with(feature_cols=[{"name": "a/b", "type": "categorical"}]),
            "key 'ds.feature_cols[0].name': expected a column name",
        ),
        (_with(label_col={"name": "x"}), "key 'ds.label_col.name': 'x' is also a feature"),
        (_with(label_col={"name": "y", "weight": 1}), "unknown key 'ds.label_col.weight'"),
        (_with(group_col=3), "key 'ds.group_col': expected one column name"),
        (_with(group_col="y"), "the label column cannot be the group column"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, raw: dict, expected: str) -> None:

    path = write(tmp_path, yaml.safe_dump({"ds": raw}))
    with pytest.raises(ConfigError) as info:
        load_dataset_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_unknown_key_message_format(tmp_path: Path) -> None:

    raw = _with(feature_colz=[])
    path = write(tmp_path, yaml.safe_dump(raw), "frappe.yaml")
    with pytest.raises(
        ConfigError, match=r"frappe\.yaml: unknown key 'feature_colz' \(expected one of: name, "
    ):
        load_dataset_config(path)


def test_dict_errors_say_dataset_config() -> None:
    with pytest.raises(ConfigError, match=r"^dataset config: missing required key 'valid_data'$"):
        load_dataset_config(_with(valid_data=None, name="t"))


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        load_dataset_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line 2: invalid YAML"):
        load_dataset_config(write(tmp_path, "a: [1, 2\nb: {\n", "bad.yaml"))
    with pytest.raises(ConfigError, match=r"empty\.yaml: file is empty"):
        load_dataset_config(write(tmp_path, "", "empty.yaml"))
    two = {"a": dict(BASE), "b": dict(BASE)}

    with pytest.raises(
        ConfigError, match=r"two\.yaml: holds 2 datasets \(a, b\); expected exactly one"
    ):
        load_dataset_config(write(tmp_path, yaml.safe_dump(two), "two.yaml"))
