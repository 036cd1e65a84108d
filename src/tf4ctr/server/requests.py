"""A request body -> validated raw rows, or a :class:`RequestError` naming field and instance.

Kept free of any web framework so that every rule is unit-tested in-process, and so that the
fuzz test only has to show the server turns these errors into responses. The rules:

- the body is a JSON object, either ``{"instances": [row, ...]}`` or the ranking form
  ``{"context": {user fields}, "candidates": [{item fields}, ...]}`` (a candidate row is the
  context's fields plus its own; a field in both is refused, since which one wins would be a
  guess);
- every feature field of the run must be present (a key left out is a client bug more often
  than a missing value: send ``null`` for a missing value, which goes to ``fill_na`` or the
  out-of-vocabulary row exactly as an empty CSV cell does in ``tf4ctr predict``);
- no other keys, except the run's label column (rows copied from the training CSV carry it);
- categorical values are strings, numbers or null (keyed by their text, as in the CSV);
  numeric values are finite numbers, numeric strings, ``""`` or null; booleans, lists and
  objects are refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

try:  # orjson parses a 700-candidate body several times faster than the stdlib
    import orjson

    _fast_loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the serve extra
    _fast_loads = json.loads


def _loads(raw: bytes) -> Any:
    """JSON via orjson; what it refuses but the stdlib reads (integers past 64 bits, NaN,
    Infinity) is read by the stdlib, so the error names the field, not just the body."""
    try:
        return _fast_loads(raw)
    except ValueError:
        return json.loads(raw)


__all__ = ["Limits", "RequestError", "RequestSchema", "parse_body"]

_FLOAT32_MAX = 3.4028234663852886e38


class RequestError(Exception):
    """A client error: an HTTP status, a kind (a metrics label) and where it is."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        field: str | None = None,
        instance: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.field, self.instance = field, instance

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "kind": self.kind,
                "message": self.message,
                "field": self.field,
                "instance": self.instance,
            }
        }


@dataclass(frozen=True)
class Limits:
    """What one request may hold; beyond it the answer is 413, before any encoding work."""

    max_rows: int = 4096
    max_body_bytes: int = 8 << 20


class RequestSchema:
    """The fields a request row must carry, read from the run's preprocessor state.

    Read from the state JSON rather than from RowEncoder's attributes so that the encoder stays
    a black box (its internals may change; its ``feature_cols`` input format will not).
    """

    def __init__(self, state: Mapping[str, Any]) -> None:
        features = state["config"]["feature_cols"]
        self.fields: tuple[str, ...] = tuple(f["name"] for f in features)
        # numbers bucketed into a categorical field (Criteo's I1-I13) are checked as numbers
        self.numeric: frozenset[str] = frozenset(
            f["name"]
            for f in features
            if f["type"] == "numeric"
            or (f.get("preprocess") and f.get("dtype") in ("int", "float"))
        )
        #: sequence fields also take a JSON list of tokens (their text split already)
        self.sequences: frozenset[str] = frozenset(
            f["name"] for f in features if f["type"] == "sequence"
        )
        label = (state["config"].get("label_col") or {}).get("name")
        self.field_set = frozenset(self.fields)
        self.allowed = self.field_set | ({label} if isinstance(label, str) else set())


def parse_body(
    raw: bytes, schema: RequestSchema, limits: Limits
) -> tuple[list[dict[str, Any]], str]:
    """(rows to encode, "instances" or "ranking"); raises RequestError for anything else."""
    if len(raw) > limits.max_body_bytes:
        raise _too_large(len(raw), limits)
    try:
        body = _loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise RequestError(400, "malformed_json", f"body is not JSON: {exc}"[:200]) from None
    if not isinstance(body, dict):
        raise RequestError(400, "wrong_type", "body must be a JSON object", field="body")
    if "instances" in body:
        _only_keys(body, {"instances"})
        rows = _rows(body["instances"], "instances", limits)
        for i, row in enumerate(rows):
            _check_row(row, "instances", i, schema)
        return rows, "instances"
    if "candidates" in body:
        _only_keys(body, {"context", "candidates"})
        return _ranking_rows(body, schema, limits), "ranking"
    raise RequestError(
        400, "missing_field", 'body needs "instances", or "context" and "candidates"', "instances"
    )


def _too_large(size: int, limits: Limits) -> RequestError:
    return RequestError(
        413, "body_too_large", f"body of {size} bytes is over the limit of {limits.max_body_bytes}"
    )


def _only_keys(body: dict[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise RequestError(400, "unknown_field", f"unknown top-level key {key!r}", str(key))


def _rows(value: Any, where: str, limits: Limits) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(400, "wrong_type", f'"{where}" must be a list of objects', where)
    if not value:
        raise RequestError(400, "empty", f'"{where}" is empty', where)
    if len(value) > limits.max_rows:
        raise RequestError(
            413,
            "too_many_rows",
            f'"{where}" has {len(value)} rows, over the limit of {limits.max_rows}',
            where,
        )
    return value


def _ranking_rows(
    body: dict[str, Any], schema: RequestSchema, limits: Limits
) -> list[dict[str, Any]]:
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise RequestError(400, "wrong_type", '"context" must be an object', "context")
    for key, value in context.items():
        if key not in schema.allowed:
            raise RequestError(422, "unknown_field", f"context: unknown field {key!r}", str(key))
        _check_value(key, value, schema, "context", None)
    candidates = _rows(body["candidates"], "candidates", limits)
    needed = schema.field_set - context.keys()  # what each candidate must bring itself
    rows = []
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, dict):
            raise RequestError(
                422, "wrong_type", f"candidates[{i}] must be an object", None, instance=i
            )
        if candidate.keys() != needed:  # the common case skips the key scans
            _check_candidate_keys(candidate, context, i, schema)
        for key, value in candidate.items():  # context values were checked once, above
            _check_value(key, value, schema, "candidates", i)
        rows.append({**context, **candidate})
    return rows


def _check_candidate_keys(
    candidate: dict[str, Any], context: dict[str, Any], i: int, schema: RequestSchema
) -> None:
    for key in candidate:
        if key in context:
            raise RequestError(
                422, "duplicate_field", f"candidates[{i}].{key} is also in context", str(key), i
            )
        if key not in schema.allowed:
            raise RequestError(
                422, "unknown_field", f"candidates[{i}]: unknown field {key!r}", str(key), i
            )
    for name in schema.fields:
        if name not in candidate and name not in context:
            raise RequestError(
                422,
                "missing_field",
                f"candidates[{i}] lacks field {name!r} (in neither it nor context; "
                "send null for a missing value)",
                name,
                i,
            )


def _check_row(row: Any, where: str, i: int, schema: RequestSchema) -> None:
    if not isinstance(row, dict):
        raise RequestError(422, "wrong_type", f"{where}[{i}] must be an object", None, i)
    if row.keys() != schema.field_set:  # the common case skips both key scans
        for name in schema.fields:
            if name not in row:
                raise RequestError(
                    422,
                    "missing_field",
                    f"{where}[{i}] lacks field {name!r} (send null for a missing value)",
                    name,
                    i,
                )
        for key in row:
            if key not in schema.allowed:
                raise RequestError(
                    422, "unknown_field", f"{where}[{i}]: unknown field {key!r}", str(key), i
                )
    for name in schema.fields:
        _check_value(name, row[name], schema, where, i)


def _check_value(name: str, value: Any, schema: RequestSchema, where: str, i: int | None) -> None:
    kind = type(value)
    if value is None or kind is str and name not in schema.numeric:
        return
    at = f"{where}[{i}].{name}" if i is not None else f"{where}.{name}"
    if kind is list and name in schema.sequences:
        for token in value:
            if type(token) is not str:
                raise RequestError(
                    422, "wrong_type",
                    f"{at}: a list of tokens must hold strings, got {type(token).__name__}",
                    name, i,
                )  # fmt: skip
        return
    if kind is bool or kind not in (int, float, str):
        raise RequestError(
            422, "wrong_type", f"{at}: expected a string, number or null, got {kind.__name__}",
            name, i,
        )  # fmt: skip
    if kind is str:  # a numeric field given as text, as in the CSV
        if value == "":
            return
        try:
            number = float(value)
        except ValueError:
            raise RequestError(
                422, "wrong_type", f"{at}: {value[:40]!r} is not a number", name, i
            ) from None
    else:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number) or abs(number) > _FLOAT32_MAX:
        raise RequestError(422, "out_of_range", f"{at}: {value!r:.40} is not a finite float32",
                           name, i)  # fmt: skip
