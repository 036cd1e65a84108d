"""Request validation, in-process: every refusal names its field and instance index."""

from __future__ import annotations

import json

import pytest

from tf4ctr.server.requests import Limits, RequestError, RequestSchema, parse_body

STATE = {
    "config": {
        "feature_cols": [
            {"name": "user", "type": "categorical"},
            {"name": "item", "type": "categorical"},
            {"name": "price", "type": "numeric"},
        ],
        "label_col": {"name": "label"},
    }
}
SCHEMA = RequestSchema(STATE)
LIMITS = Limits(max_rows=3, max_body_bytes=2000)
ROW = {"user": "u1", "item": "i2", "price": 0.5}


def _parse(body: object) -> tuple[list[dict], str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_body(raw, SCHEMA, LIMITS)


def test_both_forms_give_the_rows_to_encode():
    rows, form = _parse({"instances": [ROW, {**ROW, "label": 1, "price": "0.25", "item": 7}]})
    assert form == "instances" and rows[1]["price"] == "0.25" and len(rows) == 2
    body = {"context": {"user": "u1"}, "candidates": [{"item": "a", "price": None}, {"item": "b", "price": 1}]}  # fmt: skip
    rows, form = _parse(body)
    assert form == "ranking"
    assert rows == [{"user": "u1", "item": "a", "price": None}, {"user": "u1", "item": "b", "price": 1}]  # fmt: skip


BAD = [
    # (body, status, kind, field, instance)
    (b"{not json", 400, "malformed_json", None, None),
    (b"\xff\xfe", 400, "malformed_json", None, None),
    ([ROW], 400, "wrong_type", "body", None),
    ({"rows": [ROW]}, 400, "missing_field", "instances", None),
    ({"instances": [ROW], "extra": 1}, 400, "unknown_field", "extra", None),
    ({"instances": {}}, 400, "wrong_type", "instances", None),
    ({"instances": []}, 400, "empty", "instances", None),
    ({"instances": [ROW] * 4}, 413, "too_many_rows", "instances", None),
    ({"instances": [ROW, "x"]}, 422, "wrong_type", None, 1),
    ({"instances": [ROW, {"user": "u", "item": "i"}]}, 422, "missing_field", "price", 1),
    ({"instances": [{**ROW, "colour": "red"}]}, 422, "unknown_field", "colour", 0),
    ({"instances": [ROW, ROW, {**ROW, "user": True}]}, 422, "wrong_type", "user", 2),
    ({"instances": [{**ROW, "item": [1]}]}, 422, "wrong_type", "item", 0),
    ({"instances": [{**ROW, "price": {"a": 1}}]}, 422, "wrong_type", "price", 0),
    ({"instances": [{**ROW, "price": "cheap"}]}, 422, "wrong_type", "price", 0),
    ({"instances": [{**ROW, "price": 1e300}]}, 422, "out_of_range", "price", 0),
    ({"instances": [{**ROW, "price": 10**400}]}, 422, "out_of_range", "price", 0),
    ({"instances": [{**ROW, "price": "inf"}]}, 422, "out_of_range", "price", 0),
    (b'{"instances": [{"user": "u", "item": "i", "price": NaN}]}', 422, "out_of_range", "price", 0),
    ({"context": [], "candidates": [ROW]}, 400, "wrong_type", "context", None),
    ({"context": {"shoe": 1}, "candidates": [ROW]}, 422, "unknown_field", "shoe", None),
    (
        {"context": {"user": "u"}, "candidates": [{"item": "i", "price": 1}, ROW]},
        422,
        "duplicate_field",
        "user",
        1,
    ),  # fmt: skip
    ({"context": {"user": "u"}, "candidates": [{"item": "i"}]}, 422, "missing_field", "price", 0),
    (
        {"context": {"user": "u"}, "candidates": [{"item": "i", "price": 1}, 3]},
        422,
        "wrong_type",
        None,
        1,
    ),  # fmt: skip
    (
        {"context": {"user": False}, "candidates": [{"item": "i", "price": 1}]},
        422,
        "wrong_type",
        "user",
        None,
    ),  # fmt: skip
    ({"instances": [ROW], "pad": "x" * 3000}, 413, "body_too_large", None, None),
    (b"[" * 5000 + b"]" * 5000, 413, "body_too_large", None, None),
    (b"[" * 900 + b"]" * 900, 400, "wrong_type", "body", None),
]


@pytest.mark.parametrize(("body", "status", "kind", "field", "instance"), BAD)
def test_a_bad_body_is_refused_naming_field_and_instance(body, status, kind, field, instance):
    with pytest.raises(RequestError) as caught:
        _parse(body)
    error = caught.value
    assert (error.status, error.kind, error.field, error.instance) == (
        status,
        kind,
        field,
        instance,
    )
    answer = error.body()["error"]
    assert (
        answer["field"] == field
        and answer["instance"] == instance
        and "\n" not in answer["message"]
    )
    if instance is not None:
        assert f"[{instance}]" in answer["message"]
