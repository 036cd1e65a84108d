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
the vocabulary), text mapped by a ``preprocess`` text function (KKBox's ISRC country code:
missing, or "" after it, is out of vocabulary), and sequence fields (MovieLens' genres: the
text split on the field's ``splitter``, empty tokens dropped, the first ``max_len`` tokens
left-aligned, 0-padded; a JSON list of tokens is taken as already split). Bucketers and text
functions are imported from tf4ctr (and pyarrow) when such a field is present; for runs
without them this file is self-contained on purpose, so it can be copied next to a service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RowEncoder"]

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
        #: per sequence field (categorical position): its splitter and max_len
        self.sequences: dict[int, tuple[str, int]] = {}
        #: per text-preprocessed field (categorical position): the text function
        self.text_functions: dict[int, Any] = {}
        for f in features:
            if f.get("preprocess") and f["type"] != "categorical":
                raise ValueError(
                    f"field {f['name']!r} ({f['type']}, preprocess {f['preprocess']!r}) is not "
                    "supported by the light encoder; score with tf4ctr predict or tf4ctr.load"
                )
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
                from tf4ctr.data.buckets import TEXT_PREPROCESSORS

                if f["preprocess"] not in TEXT_PREPROCESSORS:
                    raise ValueError(
                        f"field {f['name']!r}: preprocess {f['preprocess']!r} is not one the "
                        "encoder knows; score with tf4ctr predict or tf4ctr.load"
                    )
                self.text_functions[len(self.categorical)] = TEXT_PREPROCESSORS[f["preprocess"]]
            if f["type"] == "sequence":
                if not isinstance(f.get("max_len"), int) or f["max_len"] < 1:
                    raise ValueError(f"sequence field {f['name']!r}: no max_len in the state")
                self.sequences[len(self.categorical)] = (f.get("splitter") or "|", f["max_len"])
            if f["type"] in ("categorical", "sequence"):
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
        """(categorical int64 [B, F], numeric float32 [B, N]) for an iterable of row dicts;
        F counts a sequence field's ``max_len`` columns, in field order."""
        rows = list(rows)
        widths = [self.sequences[j][1] if j in self.sequences else 1 for j in range(len(self.categorical))]  # fmt: skip
        starts = np.cumsum([0, *widths])
        cat = np.empty((len(rows), int(starts[-1])), dtype=np.int64)
        num = np.empty((len(rows), len(self.numeric)), dtype=np.float64)
        for j, (name, vocab, fill) in enumerate(self.categorical):
            at = slice(int(starts[j]), int(starts[j + 1]))
            values = [row.get(name) for row in rows]
            if j in self.bucketers:
                cat[:, at.start] = self._bucket_indices(rows, j, *self.bucketers[j])
            elif j in self.sequences:
                cat[:, at] = _sequence_indices(values, vocab, *self.sequences[j])
            elif j in self.text_functions:
                cat[:, at.start] = _mapped_text_indices(values, vocab, self.text_functions[j])
            else:
                cat[:, at.start] = _vocabulary_indices(values, vocab, fill)
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


def _sequence_indices(
    values: list[Any], vocab: Mapping[str, int], splitter: str, max_len: int
) -> np.ndarray:
    """A sequence field's [B, max_len] indices: tokens split on ``splitter`` (or a list sent
    already split), empty tokens dropped, unseen ones OOV, the first ``max_len`` kept, 0-padded."""
    out = np.zeros((len(values), max_len), dtype=np.int64)
    for r, value in enumerate(values):
        if isinstance(value, list | tuple):
            tokens = [t if isinstance(t, str) else _text(t) or "" for t in value]
        else:
            text = _text(value)
            tokens = text.split(splitter) if text is not None else []
        kept = [vocab.get(t, _OOV) for t in tokens if t != ""][:max_len]
        out[r, : len(kept)] = kept
    return out


def _mapped_text_indices(values: list[Any], vocab: Mapping[str, int], function: Any) -> list[int]:
    """A text-preprocessed field: the run's own function over the texts (missing stays
    missing), then "" or missing is out of vocabulary, as the preprocessor treats them."""
    import pyarrow as pa

    mapped = function(pa.chunked_array([pa.array([_text(v) for v in values], pa.string())]))
    return [_OOV if t is None or t == "" else vocab.get(t, _OOV) for t in mapped.to_pylist()]


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str | None:
    """The text a value is keyed by, as tf4ctr reads it from a CSV (missing -> None)."""
    if _missing(value):
        return None
    return value if isinstance(value, str) else str(value)
