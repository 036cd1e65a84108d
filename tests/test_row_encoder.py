"""tf4ctr.serving.RowEncoder against the run's own Preprocessor, row for row (what `tf4ctr
serve` encodes must be what `tf4ctr predict` encodes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tf4ctr.data.preprocess import Preprocessor
from tf4ctr.data.schema import load_dataset_config
from tf4ctr.serving import RowEncoder


def _config(features: list[dict]):
    return load_dataset_config(
        {
            "name": "t",
            "train_data": "/x/train.csv",
            "valid_data": "/x/valid.csv",
            "test_data": "/x/test.csv",
            "feature_cols": features,
            "label_col": {"name": "label"},
        }
    )


NUMBERS = [0.0, 1.0, 2.0, 2.5, 3.0, -1.0, -3.0, 7.0, 100.0, 1e6, None, 55.5]


@pytest.mark.parametrize("bucketer", ["criteo_log_bucket", "criteo_log_bucket_fuxictr"])
@pytest.mark.parametrize("fill_na", [None, 0])
def test_bucketed_fields_encode_as_the_preprocessor_does(bucketer, fill_na):
    bucketed = {"name": "I1", "type": "categorical", "dtype": "float", "preprocess": bucketer}
    if fill_na is not None:
        bucketed["fill_na"] = fill_na
    config = _config(
        [bucketed, {"name": "C1", "type": "categorical"}, {"name": "n", "type": "numeric"}]
    )
    train = pa.table(
        {
            "I1": pa.array(NUMBERS * 3, pa.float64()),
            "C1": ["a", "b", "c"] * 12,
            "n": [0.5] * 36,
            "label": [0.0, 1.0] * 18,
        }
    )
    prep = Preprocessor(config).fit(train)
    # seen numbers, numbers whose bucket training never saw (1e12), missing, numeric text
    raw = [*NUMBERS, 1e12, float("inf"), None]
    test = pa.table(
        {
            "I1": pa.array(raw, pa.float64()),
            "C1": ["a", "zzz"] * (len(raw) // 2) + ["b"] * (len(raw) % 2),
            "n": [1.5] * len(raw),
            "label": [0.0] * len(raw),
        }
    )
    expected = prep.transform(test)
    rows = [{"I1": v, "C1": c, "n": 1.5} for v, c in zip(raw, test["C1"].to_pylist(), strict=True)]
    rows[3]["I1"] = "2.5"  # as a JSON body may send it
    encoder = RowEncoder(prep.state_dict())
    categorical, numeric = encoder.encode(rows)
    assert categorical.tolist() == expected.categorical.tolist()
    assert np.array_equal(numeric, expected.numeric)
    assert (categorical[:, 0] == 1).any() and (categorical[:, 0] > 1).any()  # OOV and known


def test_a_bucketed_value_that_is_no_number_names_the_field_and_row():
    config = _config(
        [{"name": "I1", "type": "categorical", "dtype": "float", "preprocess": "criteo_log_bucket"}]
    )
    prep = Preprocessor(config).fit(pa.table({"I1": [1.0, 5.0], "label": [0.0, 1.0]}))
    with pytest.raises(ValueError, match=r"field 'I1' of row 1: expected a number, got 'x'"):
        RowEncoder(prep.state_dict()).encode([{"I1": 3}, {"I1": "x"}])


def test_a_text_preprocessor_encodes_as_the_preprocessor_does():
    config = _config(
        [{"name": "isrc", "type": "categorical", "preprocess": "extract_country_code"}]
    )
    train = pa.table({"isrc": ["USAB1", "GBCD2", "US999", "FR1"], "label": [0.0, 1.0] * 2})
    prep = Preprocessor(config).fit(train)
    raw = [
        "USZZ",
        "GB",
        "FR77",
        "DE1",
        "",
        None,
        "U",
    ]  # known, known, known, unseen, missing x2, short
    expected = prep.transform(pa.table({"isrc": pa.array(raw, pa.string()), "label": [0.0] * 7}))
    got, _ = RowEncoder(prep.state_dict()).encode([{"isrc": v} for v in raw])
    assert got.tolist() == expected.categorical.tolist()
    # by hand: vocabulary US, GB, FR in order of counts then text -> some order of 2, 3, 4
    assert got[:, 0].tolist()[3:] == [1, 1, 1, 1] and sorted(got[:3, 0].tolist()) == [2, 3, 4]


def test_sequence_fields_encode_as_the_preprocessor_does():
    """MovieLens' genres: split on the splitter, empty tokens dropped, unseen OOV, the first
    max_len kept left-aligned, 0-padded; the columns sit in field order between the others."""
    config = _config(
        [
            {"name": "u", "type": "categorical"},
            {"name": "g", "type": "sequence", "splitter": "|", "max_len": 3},
            {"name": "c", "type": "categorical"},
            {"name": "n", "type": "numeric"},
        ]
    )
    train = pa.table(
        {
            "u": ["a", "b", "a", "b"],
            "g": ["x|y", "y|z", "w", "x|y|z|w"],
            "c": ["p", "q", "p", "q"],
            "n": [1.0, 2.0, 3.0, 4.0],
            "label": [0.0, 1.0] * 2,
        }
    )
    prep = Preprocessor(config).fit(train)
    raw = ["x|y", "z|w|x|y", "x||y|", "", None, "new|x", "|", "y"]
    test = pa.table(
        {
            "u": ["a"] * 8,
            "g": pa.array(raw, pa.string()),
            "c": ["q"] * 8,
            "n": [2.0] * 8,
            "label": [0.0] * 8,
        }
    )
    expected = prep.transform(test)
    rows = [{"u": "a", "g": g, "c": "q", "n": 2.0} for g in raw]
    encoder = RowEncoder(prep.state_dict())
    cat, num = encoder.encode(rows)
    assert cat.shape == (8, 5)
    assert cat.tolist() == expected.categorical.tolist()
    assert np.array_equal(num, expected.numeric)
    # by hand, rows 3-6: nothing, nothing, OOV then x's row, nothing
    x = cat[0, 1]
    assert cat[3, 1:4].tolist() == [0, 0, 0] and cat[4, 1:4].tolist() == [0, 0, 0]
    assert cat[5, 1:4].tolist() == [1, x, 0] and cat[6, 1:4].tolist() == [0, 0, 0]
    # a JSON list is taken as already split
    listed, _ = encoder.encode([{"u": "a", "g": ["z", "w", "x", "y"], "c": "q", "n": 2.0}])
    assert listed.tolist() == cat[1:2].tolist()


def test_the_server_checks_a_bucketed_field_as_a_number():
    """`tf4ctr serve` answers 422 naming the field and the instance, before encoding."""
    import json

    from tf4ctr.server.requests import Limits, RequestError, RequestSchema, parse_body

    config = _config(
        [
            {
                "name": "I1",
                "type": "categorical",
                "dtype": "float",
                "preprocess": "criteo_log_bucket",
            },
            {"name": "C1", "type": "categorical"},
        ]
    )
    prep = Preprocessor(config).fit(
        pa.table({"I1": [1.0, 5.0], "C1": ["a", "b"], "label": [0.0, 1.0]})
    )
    schema = RequestSchema(prep.state_dict())
    good = {"instances": [{"I1": 3, "C1": "a"}, {"I1": "4.5", "C1": "zzz"}]}
    rows, form = parse_body(json.dumps(good).encode(), schema, Limits())
    assert form == "instances" and len(rows) == 2
    RowEncoder(prep.state_dict()).encode(rows)
    bad = {"instances": [{"I1": 3, "C1": "a"}, {"I1": "many", "C1": "b"}]}
    with pytest.raises(RequestError) as caught:
        parse_body(json.dumps(bad).encode(), schema, Limits())
    assert caught.value.status == 422 and "instances[1].I1" in caught.value.message


def test_plain_fields_take_each_rule_by_hand():
    """Vocabulary rows by hand (0 padding, 1 out of vocabulary, 2.. in order): a known string,
    a number keyed by its text, an unseen value, and missing (fill_na when set, else OOV), mixed
    in one column so the column-wise fast path and the per-value rules both run."""
    state = {
        "format": "tf4ctr.preprocessor/1",
        "config": {
            "feature_cols": [
                {"name": "u", "type": "categorical"},
                {"name": "c", "type": "categorical", "fill_na": "b"},
            ]
        },
        "vocabularies": {"u": ["x", "7", "y"], "c": ["a", "b"]},
    }
    encoder = RowEncoder(state)
    rows = [
        {"u": "x", "c": "a"},
        {"u": 7, "c": None},
        {"u": "zzz", "c": ""},
        {"u": None, "c": "b"},
        {"u": "y", "c": 3.5},
    ]
    categorical, numeric = encoder.encode(rows)
    assert categorical.tolist() == [[2, 2], [3, 3], [1, 3], [1, 3], [4, 1]]
    assert numeric.shape == (5, 0)
    all_known, _ = encoder.encode([{"u": "y", "c": "b"}, {"u": "x", "c": "a"}])
    assert all_known.tolist() == [[4, 3], [2, 2]]
