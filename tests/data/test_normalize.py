"""FuxiCTR's numeric ``normalizer`` (issue 30.2): fitted on train only, kept with the
vocabularies, applied alike by the preprocessor, predict, the ONNX RowEncoder."""

from __future__ import annotations

import csv
import logging
import math

import numpy as np
import pyarrow as pa
import pytest

from tf4ctr.data import load_dataset_config
from tf4ctr.data.normalize import ColumnStats
from tf4ctr.data.preprocess import Preprocessor
from tf4ctr.errors import ConfigError


def test_scalers_by_hand():
    stats = ColumnStats()
    stats.add(np.array([1.0, 2.0]))
    stats.add(np.array([3.0, 4.0]))  # merged over two pieces
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; population std sqrt(5/4)
    assert stats.scaler("StandardScaler") == pytest.approx((2.5, math.sqrt(1.25)), rel=1e-15)
    assert stats.scaler("MinMaxScaler") == (1.0, 3.0)
    constant = ColumnStats()
    constant.add(np.array([7.0, 7.0, 7.0]))
    assert constant.scaler("StandardScaler") == (7.0, 1.0)  # scale 1, as scikit-learn does
    assert constant.scaler("MinMaxScaler") == (7.0, 1.0)


def test_merged_pieces_match_one_pass_on_awkward_numbers():
    rng = np.random.default_rng(0)
    values = rng.normal(1.5e6, 3e5, 10_001)
    stats = ColumnStats()
    for piece in np.array_split(values, 7):
        stats.add(piece)
    shift, spread = stats.scaler("StandardScaler")
    assert shift == pytest.approx(values.mean(), rel=1e-12)
    assert spread == pytest.approx(values.std(), rel=1e-10)


def _config(normalizer: str | None = "StandardScaler", ftype: str = "numeric"):
    price = {"name": "price", "type": ftype, "dtype": "float"}
    if normalizer is not None:
        price["normalizer"] = normalizer
    return load_dataset_config(
        {
            "tiny": {
                "train_data": "train.csv",
                "valid_data": "valid.csv",
                "test_data": "test.csv",
                "feature_cols": [{"name": "user", "type": "categorical"}, price],
                "label_col": {"name": "label", "dtype": "float"},
            }
        }
    )


def _table(prices, users=None):
    users = users or [f"u{i % 3}" for i in range(len(prices))]
    return pa.table(
        {"label": [float(i % 2) for i in range(len(prices))], "user": users, "price": prices}
    )


def test_fuxictr_normalizer_keys_are_accepted_and_checked():
    assert _config().feature_cols[1].normalizer == "StandardScaler"
    assert _config("MinMaxScaler").feature_cols[1].normalizer == "MinMaxScaler"
    assert "normalizer" not in _config(None).feature_cols[1].to_dict()  # old cache keys kept
    with pytest.raises(ConfigError, match=r"normalizer.*one of StandardScaler, MinMaxScaler"):
        _config("Standard")
    with pytest.raises(ConfigError, match="only numeric features are scaled"):
        _config("StandardScaler", ftype="categorical")


@pytest.mark.parametrize(
    ("normalizer", "expected"),
    [
        # train 2, 4, missing (filled 0), 6 -> mean 3, population std sqrt(5)
        ("StandardScaler", [(10 - 3) / math.sqrt(5), (0 - 3) / math.sqrt(5)]),
        ("MinMaxScaler", [(10 - 0) / 6, (0 - 0) / 6]),  # min 0 (the filled cell), max 6
        (None, [10.0, 0.0]),
    ],
)
def test_fitted_on_train_applied_to_other_splits_and_kept_in_the_state(normalizer, expected):
    prep = Preprocessor(_config(normalizer)).fit(_table([2.0, 4.0, None, 6.0]))
    valid = _table([10.0, None])
    got = prep.transform(valid).numeric[:, 0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))
    again = Preprocessor.from_state_dict(prep.state_dict())
    np.testing.assert_array_equal(again.transform(valid).numeric[:, 0], got)
    pieces = [_table([2.0, 4.0], ["u0", "u1"]), _table([None, 6.0], ["u2", "u0"])]
    streamed = Preprocessor(_config(normalizer)).fit_chunks(pieces)
    assert streamed.state_dict() == prep.state_dict()


def test_a_state_without_its_statistics_is_refused():
    state = Preprocessor(_config()).fit(_table([1.0, 2.0])).state_dict()
    del state["scalers"]
    with pytest.raises(ConfigError, match=r"scalers\.price.*StandardScaler"):
        Preprocessor.from_state_dict(state)


def test_a_raw_field_that_would_swamp_the_embeddings_is_warned_once(caplog):
    with caplog.at_level(logging.WARNING, logger="tf4ctr"):
        Preprocessor(_config(None)).fit(_table([12_000.0, 1_484_705.0, 3.0]))
        Preprocessor(_config(None)).fit(_table([0.5, 0.25, 3.0]))  # small: no warning
        Preprocessor(_config()).fit(_table([12_000.0, 1_484_705.0, 3.0]))  # scaled: none
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "field 'price': raw values reach 1.485e+06" in warnings[0]
    assert "set normalizer: StandardScaler" in warnings[0]


def test_train_predict_and_onnx_rows_agree_with_a_normalizer(tiny_project, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from tf4ctr.cli import main
    from tf4ctr.serving import RowEncoder

    monkeypatch.chdir(tiny_project)
    dataset = tiny_project / "dataset.yaml"
    text = dataset.read_text().replace(
        "{name: price, type: numeric, dtype: float}",
        "{name: price, type: numeric, dtype: float, normalizer: StandardScaler}",
    )
    assert "normalizer" in text
    dataset.write_text(text)
    assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    assert main(["predict", str(run_dir), "--input", "test.csv", "--output", "s.csv"]) == 0
    expected = np.array(
        [float(r["probability"]) for r in csv.DictReader((tiny_project / "s.csv").open())]
    )
    assert main(["export", str(run_dir), "--format", "onnx", "--output", "m.onnx"]) == 0
    encoder = RowEncoder.from_file("m.onnx.preprocessor.json")
    rows = list(csv.DictReader((tiny_project / "test.csv").open()))
    categorical, numeric = encoder.encode(rows)
    prices = np.array([float(r["price"]) for r in rows])
    assert abs(numeric[:, 0].mean() - prices.mean()) > 0.1  # scaled, not raw (prices in [0, 1))
    got = ort.InferenceSession("m.onnx").run(
        None, {"categorical": categorical, "numeric": numeric}
    )[0]
    assert np.abs(got - expected).max() <= 1e-5
