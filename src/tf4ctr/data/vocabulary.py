"""A field's vocabulary: how its values are keyed, counted in pieces and looked up.

The index convention (see :mod:`tf4ctr.data.preprocess`): 0 is padding, 1 is
OOV, 2.. the vocabulary in order. :class:`ValueCounter` merges the counts of a
column read in pieces; :class:`Lookup` maps keys to indices with Arrow's
``index_in``, by the integer itself for a bucketed number field.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tf4ctr.data.buckets import TEXT_PREPROCESSORS
from tf4ctr.data.schema import FeatureSpec

__all__ = [
    "FIRST_VOCAB_INDEX",
    "KEY_BUCKET",
    "KEY_TEXT",
    "KEY_TOKENS",
    "OOV_INDEX",
    "PADDING_INDEX",
    "Lookup",
    "ValueCounter",
    "key_kind",
    "to_numpy",
]

PADDING_INDEX = 0
OOV_INDEX = 1
FIRST_VOCAB_INDEX = 2

# How a field's values are keyed, which decides the path its counting and lookup take.
KEY_TEXT = "text"  # raw text: counted as read, the empty string and missing dropped at the end
KEY_BUCKET = "bucket"  # a number bucketer: counted and looked up by the integer bucket id
KEY_TOKENS = "tokens"  # the rest (text fill_na, text preprocessors, sequences)


def key_kind(feature: FeatureSpec) -> str:
    if feature.is_sequence or feature.preprocess in TEXT_PREPROCESSORS:
        return KEY_TOKENS
    if feature.preprocess is not None:
        return KEY_BUCKET
    return KEY_TEXT if feature.fill_na is None else KEY_TOKENS


class Lookup:
    """A field's vocabulary as a value set to look values up in."""

    def __init__(self, vocab: pa.Array, *, by_integer: bool) -> None:
        self.vocab = vocab
        #: whether "" is a token (only a fill_na of "" makes it one); else "" means missing
        self.has_empty = bool(pc.any(pc.equal(vocab, "")).as_py()) if len(vocab) else False
        self._integers = _integer_keys(vocab) if by_integer else None

    def indices(self, keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Index of each key (2.. in vocabulary order; OOV for unknown and null), int32.

        ``keys`` are strings, or for a bucketed field integer bucket ids.
        """
        if pa.types.is_integer(keys.type):
            if self._integers is None:  # a vocabulary that is not all canonical integer text
                keys = keys.cast(pa.string())
            else:
                return _index_in(keys, self._integers)
        return _index_in(keys, self.vocab)


def _integer_keys(vocab: pa.Array) -> pa.Array | None:
    """The vocabulary as int64, when each entry is exactly the text int64 casts to."""
    try:
        ints = vocab.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return ints if ints.cast(pa.string()).equals(vocab) else None


def _index_in(keys: pa.ChunkedArray | pa.Array, value_set: pa.Array) -> np.ndarray:
    idx = pc.index_in(keys, value_set=value_set)
    idx = pc.fill_null(pc.add(idx, pa.scalar(FIRST_VOCAB_INDEX, idx.type)), OOV_INDEX)
    return to_numpy(idx).astype(np.int32, copy=False)


class ValueCounter:
    """Running value counts of one column seen in pieces, merged with Arrow's hash aggregation.

    Per-piece counts are kept until they outnumber the merged table, then
    folded in, so the work per row stays constant and memory stays within a
    small multiple of the number of distinct values.
    """

    #: pending rows below which pieces are not merged yet (tests lower it)
    merge_rows = 1 << 20

    def __init__(self) -> None:
        self._merged: pa.Table | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, tokens: pa.ChunkedArray | pa.Array) -> None:
        counts = pc.value_counts(tokens)
        self._add(pa.table({"value": counts.field("values"), "count": counts.field("counts")}))

    def add_distinct(self, values: pa.Array, counts: pa.Array) -> None:
        """Add counts already taken of distinct ``values``."""
        self._add(pa.table({"value": values, "count": counts}))

    def add_counts(self, values: pa.Array, counts: pa.Array) -> None:
        """Add counts already taken; ``values`` may repeat (they are summed)."""
        self._add(_sum_by_value(pa.table({"value": values, "count": counts})))

    def _add(self, part: pa.Table) -> None:
        self._pending.append(part)
        self._pending_rows += part.num_rows
        merged_rows = 0 if self._merged is None else self._merged.num_rows
        if self._pending_rows > max(self.merge_rows, merged_rows):
            self._merge()

    def _merge(self) -> None:
        parts = ([self._merged] if self._merged is not None else []) + self._pending
        if len(parts) == 1:
            self._merged = parts[0]
        else:
            self._merged = _sum_by_value(pa.concat_tables(parts))
        self._pending, self._pending_rows = [], 0

    def result(self) -> pa.Table:
        self._merge()
        if self._merged is None:
            return pa.table({"value": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
        return self._merged


def _sum_by_value(counts: pa.Table) -> pa.Table:
    # One thread: the caller runs several fields at once, and Arrow's threaded
    # aggregation costs 1.3-2.5x the CPU of a single thread's here.
    summed = counts.group_by("value", use_threads=False).aggregate([("count", "sum")])
    return pa.table({"value": summed["value"], "count": summed["count_sum"]})


def to_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False))
