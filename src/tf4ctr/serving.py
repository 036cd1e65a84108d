"""Raw rows -> the exported graph's inputs, with numpy only (no torch, no pyarrow, no tf4ctr
internals): what a scoring service needs beside an ONNX file from ``tf4ctr export``.

    encoder = RowEncoder.from_file("model.onnx.preprocessor.json")
    categorical, numeric = encoder.encode([{"user": "u7", "item": "i3", "price": 0.5}])
    probability = onnx_session.run(None, {"categorical": categorical, "numeric": numeric})[0]

It follows tf4ctr's preprocessing for plain categorical fields (a value is keyed by its text;
missing -> ``fill_na`` if set, else out-of-vocabulary like unseen values) and numeric fields
(missing -> ``fill_na`` or 0, then the field's ``normalizer``, with the train split's
statistics stored beside the vocabularies), and numbers bucketed into a categorical field by a
``preprocess`` bucketer (Criteo's log buckets: missing -> ``fill_na``, then the bucket id keys
the vocabulary; those bucketers are imported from tf4ctr when such a field is present). Text
preprocessors and sequence fields are refused with a clear error: score such runs with
``tf4ctr predict`` or ``tf4ctr.load``. For runs without bucketed fields this file is
self-contained on purpose, so it can be copied next to a service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["WEIGHTS_KEY", "RowEncoder"]

# ONNX metadata key a quantised export carries (``tf4ctr export --quantize``); absent: float32
WEIGHTS_KEY = "tf4ctr.weights"

_OOV, _FIRST = 1, 2  # index conventions of tf4ctr's preprocessor (0 is padding)
_MISS = -1  # no index yet: the value takes the per-value rules


class RowEncoder:
    """Encodes raw rows like the run's own preprocessor (plain categorical and numeric fields)."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != "tf4ctr.preprocessor/1":
            raise ValueError(f"not a tf4ctr preprocessor state (format {state.get('format')!r})")
        features = state["config"]["feature_cols"]
        self.categorical: list[tuple[str, dict[str, int], str | None]] = []
        self.numeric: list[tuple[str, float]] = []
        #: per numeric field, (shift, scale): the value fed is (x - shift) / scale
        self.scalers: list[tuple[float, float]] = []
        scalers = state.get("scalers") or {}
        #: per bucketed field (categorical position): its bucketer and its fill_na
        self.bucketers: dict[int, tuple[Any, float | None]] = {}
        for f in features:
            if f["type"] == "categorical" and f.get("preprocess"):
                from tf4ctr.data.buckets import NUMERIC_BUCKETERS

                if f["preprocess"] in NUMERIC_BUCKETERS:
                    fill = None if f.get("fill_na") is None else float(f["fill_na"])
                    self.bucketers[len(self.categorical)] = (
                        NUMERIC_BUCKETERS[f["preprocess"]],
                        fill,
                    )
                    vocab = {v: i + _FIRST for i, v in enumerate(state["vocabularies"][f["name"]])}
                    self.categorical.append((f["name"], vocab, None))
                    continue
            if f["type"] == "sequence" or f.get("preprocess"):
                raise ValueError(
                    f"field {f['name']!r} ({f['type']}, preprocess {f.get('preprocess')!r}) is "
                    "not supported by the light encoder; score with tf4ctr predict or tf4ctr.load"
                )
            if f["type"] == "categorical":
                vocab = {v: i + _FIRST for i, v in enumerate(state["vocabularies"][f["name"]])}
                fill = None if f.get("fill_na") is None else str(f["fill_na"])
                self.categorical.append((f["name"], vocab, fill))
            else:
                fill = 0.0 if f.get("fill_na") is None else float(f["fill_na"])
                self.numeric.append((f["name"], fill))
                if f.get("normalizer") is not None and f["name"] not in scalers:
                    raise ValueError(
                        f"field {f['name']!r}: its {f['normalizer']} has no statistics"
                    )
                entry = scalers.get(f["name"], {"shift": 0.0, "scale": 1.0})
                self.scalers.append((float(entry["shift"]), float(entry["scale"])))

    @classmethod
    def from_file(cls, path: str | Path) -> RowEncoder:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    @property
    def columns(self) -> list[str]:
        return [name for name, _, _ in self.categorical] + [name for name, _ in self.numeric]

    def encode(self, rows: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(categorical int64 [B, F], numeric float32 [B, N]) for an iterable of row dicts."""
        rows = list(rows)
        cat = np.empty((len(rows), len(self.categorical)), dtype=np.int64)
        num = np.empty((len(rows), len(self.numeric)), dtype=np.float64)
        for j, (bucketer, fill) in self.bucketers.items():
            cat[:, j] = self._bucket_indices(rows, j, bucketer, fill)
        for j, (name, vocab, fill) in enumerate(self.categorical):
            if j not in self.bucketers:
                cat[:, j] = _vocabulary_indices([row.get(name) for row in rows], vocab, fill)
        for j, (name, fill) in enumerate(self.numeric):
            for r, row in enumerate(rows):
                value = row.get(name)
                num[r, j] = fill if _missing(value) else float(value)
        if self.numeric:  # in float64 then rounded once, as the preprocessor computes it
            shift, spread = (np.array(v, dtype=np.float64) for v in zip(*self.scalers, strict=True))
            num = (num - shift) / spread
        return cat, num.astype(np.float32)

    def _bucket_indices(
        self, rows: list[Mapping[str, Any]], j: int, bucketer: Any, fill: float | None
    ) -> np.ndarray:
        """One bucketed field's indices: number -> fill_na if missing -> bucket id -> vocabulary
        (a bucket id keys it by its integer text; no bucket, e.g. for inf, is out of vocabulary)."""
        name, vocab, _ = self.categorical[j]
        numbers = np.empty(len(rows), dtype=np.float64)
        for r, row in enumerate(rows):
            value = row.get(name)
            if _missing(value):
                numbers[r] = math.nan
                continue
            try:
                numbers[r] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"field {name!r} of row {r}: expected a number, got {value!r}"
                ) from None
        if fill is not None:
            numbers = np.where(np.isnan(numbers), fill, numbers)
        buckets = bucketer(numbers)
        return np.array(
            [vocab.get(str(int(b)), _OOV) if math.isfinite(b) else _OOV for b in buckets],
            dtype=np.int64,
        )


def _vocabulary_indices(values: list[Any], vocab: Mapping[str, int], fill: str | None) -> list[int]:
    """One field's indices, a column at a time: a value that is a known string is one dict
    lookup (most of a request); anything else (unseen, missing, a number keyed by its text)
    takes the per-value rules. Column-wise because per-row, per-field Python calls were most
    of a 700-candidate request's encoding time."""
    get = vocab.get
    indices = [get(v, _MISS) if type(v) is str else _MISS for v in values]
    if _MISS not in indices:  # a scan in C: the common case leaves no Python loop
        return indices
    for r, index in enumerate(indices):
        if index == _MISS:
            key = _text(values[r])
            if key is None:
                key = fill
            indices[r] = vocab.get(key, _OOV) if key is not None else _OOV
    return indices


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str | None:
    """The text a value is keyed by, as tf4ctr reads it from a CSV (missing -> None)."""
    if _missing(value):
        return None
    return value if isinstance(value, str) else str(value)
