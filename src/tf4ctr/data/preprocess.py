"""Turn raw Arrow columns into the integer and float arrays a model eats.

Index convention for every categorical field, fixed so that models, saved
checkpoints and the cache all agree without passing anything else around:

* 0 = padding; reserved for sequence fields later, never produced now;
* 1 = OOV: values unseen in train, seen fewer than ``min_categr_count`` times,
  or missing (unless the field sets ``fill_na``);
* 2.. = the vocabulary, most frequent first, ties broken by the raw string
  (byte order), so two fits on the same data give the same indices.

``vocab_size = len(vocab) + 2``. The vocabulary is fitted on the train split
only; valid and test values it has not seen become OOV, as they would in
production. All mapping is done by Arrow kernels (``value_counts``,
``index_in``, ``dictionary_encode``), never by a Python loop over rows.

A bucketed number column (``preprocess: criteo_log_bucket`` and the like)
is keyed by the decimal text of its integer bucket id, but counted and
looked up by the integer itself, and only its distinct raw numbers go
through the bucketer: a few thousand values per block instead of every row.
The vocabulary is still sorted by that text, so the indices are those of
keying every row by its text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tf4ctr.data.buckets import NUMERIC_BUCKETERS, TEXT_PREPROCESSORS
from tf4ctr.data.encoded import EncodedColumns, EncodedSplit, FeatureSchema, FieldInfo, LocalCodes
from tf4ctr.data.extend import check_extends
from tf4ctr.data.normalize import ColumnStats, read_scalers, scale, warn_raw_scale
from tf4ctr.data.readers import validate_labels
from tf4ctr.data.schema import DatasetConfig, FeatureSpec, load_dataset_config
from tf4ctr.data.vocabulary import (
    FIRST_VOCAB_INDEX,
    KEY_BUCKET,
    KEY_TEXT,
    OOV_INDEX,
    PADDING_INDEX,
    Lookup,
    ValueCounter,
    key_kind,
    to_numpy,
)
from tf4ctr.errors import ConfigError, DataError

# NUMERIC_BUCKETERS, the index constants and the encoded types are defined in buckets.py,
# vocabulary.py and encoded.py; they stay importable from here, where the preprocessor
# hands them out.
__all__ = [
    "NUMERIC_BUCKETERS",
    "OOV_INDEX",
    "PADDING_INDEX",
    "EncodedColumns",
    "EncodedSplit",
    "FeatureSchema",
    "FieldInfo",
    "LocalCodes",
    "Preprocessor",
    "distinct_values",
    "field_threads",
]

_STATE_FORMAT = "tf4ctr.preprocessor/1"
# Below this many rows a transform runs its fields one after another: threads cost more.
_THREADED_ROWS = 1 << 16


class Preprocessor:
    """Maps raw columns to field-local indices; fit on the TRAIN split only.

    ``state_dict()`` holds the dataset config and every vocabulary, which is
    all that is needed to encode raw rows later (e.g. at prediction time)
    with no other file.
    """

    def __init__(
        self,
        config: DatasetConfig,
        *,
        base: Preprocessor | None = None,
        refresh_scalers: bool = False,
    ) -> None:
        """``base``: a fitted preprocessor whose vocabularies this one extends (continual
        training): each field keeps the base's values at their indices and appends the values
        of its own train split that pass ``min_categr_count`` and the base lacks, in the usual
        order (most frequent first). Numeric scalers stay the base's, so a known row's inputs
        mean what they meant to the parent model; with ``refresh_scalers`` they are fitted on
        this train split instead (for numbers whose range drifts from day to day)."""
        if base is not None:
            check_extends(base.config, config)
            base._fitted_vocabs()
        self.base = base
        self.refresh_scalers = refresh_scalers and base is not None
        self.config = config
        self._categorical = tuple(f for f in config.feature_cols if f.is_categorical)
        self._numeric = tuple(f for f in config.feature_cols if not f.is_categorical)
        self._vocabs: dict[str, pa.Array] | None = None
        self._lookups: dict[str, Lookup] | None = None
        #: (shift, scale) of each numeric field with a normalizer, fitted with the vocabularies
        self._scalers: dict[str, tuple[float, float]] = {}

    def fit(self, table: pa.Table, *, source: Path | None = None) -> Preprocessor:
        """Build each categorical field's vocabulary from ``table`` (the train split)."""
        return self.fit_chunks([table], source=source)

    @property
    def codes_locally(self) -> bool:
        """Whether :meth:`fit_chunks` can give :class:`LocalCodes` (not for sequence fields)."""
        return not any(f.is_sequence for f in self._categorical)

    def fit_chunks(
        self,
        chunks: Iterable[pa.Table],
        *,
        source: Path | None = None,
        local_codes: Callable[[int, LocalCodes], None] | None = None,
    ) -> Preprocessor:
        """:meth:`fit` over a table given in pieces (a streamed train file).

        Counts are merged as the pieces arrive, so memory grows with the
        number of distinct values, not of rows; the vocabulary is identical
        to that of :meth:`fit` on the concatenated table.

        With ``local_codes``, each vocabulary field of each piece is also
        coded against the piece's distinct keys, in the same pass, and handed
        to ``local_codes(position of the field in schema.categorical, codes)``:
        on a worker thread, in piece order for each field, one call per field
        at a time. Only when :attr:`codes_locally`.
        """
        if local_codes is not None and not self.codes_locally:
            raise ValueError("local codes need a preprocessor without sequence fields")
        counters = {f.name: ValueCounter() for f in self._categorical}
        positions = {f.name: i for i, f in enumerate(self._categorical)}
        stats = {f.name: ColumnStats() for f in self._numeric}

        def count(table: pa.Table) -> Callable[[FeatureSpec], None]:
            def one(feature: FeatureSpec) -> None:
                counter = counters[feature.name]
                if local_codes is None:
                    self._count(table, feature, counter, source)
                    return
                local = self._local_codes(table, feature, source)
                counts = pa.array(np.bincount(local.rows, minlength=len(local.distinct)))
                if key_kind(feature) == KEY_BUCKET:
                    counter.add_counts(self._bucket_keys(local.distinct, feature), counts)
                else:
                    counter.add_distinct(local.distinct, counts)
                local_codes(positions[feature.name], local)

            return one

        def vocabulary(feature: FeatureSpec) -> pa.Array:
            freq = counters[feature.name].result()
            min_count = feature.min_categr_count or self.config.min_categr_count
            keep = pc.and_(pc.is_valid(freq["value"]), pc.greater_equal(freq["count"], min_count))
            kind = key_kind(feature)
            if kind == KEY_TEXT:
                # counted as read: an empty cell is a missing value, never a token
                keep = pc.and_(keep, pc.fill_null(pc.not_equal(freq["value"], ""), False))
            freq = freq.filter(keep)
            if kind == KEY_BUCKET:
                # the vocabulary is keyed, and so sorted, by the bucket id's text
                freq = pa.table({"value": freq["value"].cast(pa.string()), "count": freq["count"]})
            freq = freq.sort_by([("count", "descending"), ("value", "ascending")])
            fitted = freq["value"].combine_chunks().cast(pa.string())
            if self.base is None:
                return fitted
            known = self.base._fitted_vocabs()[feature.name]
            new = fitted.filter(pc.invert(pc.is_in(fitted, value_set=known)))
            return pa.concat_arrays([known, new])

        with field_threads(len(self._categorical)) as pool:
            for table in chunks:
                _map(pool, count(table), self._categorical)
                for feature in self._numeric:
                    stats[feature.name].add(self._filled_numbers(table, feature, source))
            vocabs = _map(pool, vocabulary, self._categorical)
        self._set_vocabs({f.name: v for f, v in zip(self._categorical, vocabs, strict=True)})
        self._scalers = (
            dict(self.base._scalers)
            if self.base is not None and not self.refresh_scalers
            else {f.name: stats[f.name].scaler(f.normalizer) for f in self._numeric if f.normalizer}
        )
        where = f"{source}: " if source is not None else ""
        for feature in self._numeric:
            if feature.normalizer is None:
                warn_raw_scale(feature.name, stats[feature.name], where)
        return self

    def _count(
        self, table: pa.Table, feature: FeatureSpec, counter: ValueCounter, source: Path | None
    ) -> None:
        kind = key_kind(feature)
        if kind == KEY_BUCKET:
            counts = pc.value_counts(self._float_column(table, feature.name, source))
            keys = self._bucket_keys(counts.field("values"), feature)
            counter.add_counts(keys, counts.field("counts"))
        elif kind == KEY_TEXT:
            counter.add(self._text_column(table, feature.name, source))
        else:
            counter.add(self._tokens(table, feature, source))

    def transform(
        self,
        table: pa.Table,
        *,
        require_label: bool = True,
        source: Path | None = None,
        first_row: int = 1,
        group_values: pa.Array | None = None,
        pool: Executor | None = None,
    ) -> EncodedSplit:
        """Encode a table read with the same config; ``source`` only names it in errors.

        With ``require_label=False`` (prediction input) a table without the
        label column gets an all-zero label, and one without the group column
        gets ``group=None``. For a split encoded in pieces, ``first_row`` is
        the row number of the piece's first row (for error messages) and
        ``group_values`` the split's distinct group values, so every piece
        numbers the groups alike (see :func:`distinct_values`). ``pool`` (from
        :func:`field_threads`) encodes fields side by side: a caller encoding many small
        pieces passes one, since each field's lookup costs the size of its vocabulary as well
        as the piece's rows; without one, tables of at least 65,536 rows get their own.
        """
        n = table.num_rows
        fields = len(self.config.feature_cols) if pool is None and n >= _THREADED_ROWS else 0
        with field_threads(fields) as own_pool:
            columns = self.transform_columns(
                table,
                require_label=require_label,
                source=source,
                first_row=first_row,
                group_values=group_values,
                pool=pool or own_pool,
            )
        widths = [f.max_len if f.is_sequence else 1 for f in self._categorical]
        categorical = np.empty((n, sum(widths)), dtype=np.int32)
        start = 0
        for width, values in zip(widths, columns.categorical, strict=True):
            categorical[:, start : start + width] = values.reshape(n, width)
            start += width
        numeric = np.empty((n, len(self._numeric)), dtype=np.float32)
        for j, values in enumerate(columns.numeric):
            numeric[:, j] = values
        return EncodedSplit(
            categorical=categorical, numeric=numeric, label=columns.label, group=columns.group
        )

    def transform_columns(
        self,
        table: pa.Table,
        *,
        require_label: bool = True,
        source: Path | None = None,
        first_row: int = 1,
        group_values: pa.Array | None = None,
        pool: Executor | None = None,
        vocabulary_fields: bool = True,
    ) -> EncodedColumns:
        """:meth:`transform`, one array per field; ``pool`` encodes fields side by side.

        With ``vocabulary_fields=False`` the vocabulary fields are left out
        (``categorical`` is empty), which needs no fitted preprocessor.
        """
        n = table.num_rows
        categorical: list[np.ndarray] = []
        if vocabulary_fields:
            lookups = self._fitted_lookups()

            def encode(feature: FeatureSpec) -> np.ndarray:
                return self._encode_field(table, feature, lookups[feature.name], source)

            categorical = _map(pool, encode, self._categorical)

        def numbers(feature: FeatureSpec) -> np.ndarray:
            values = self._filled_numbers(table, feature, source)
            return scale(values, self._scalers.get(feature.name))

        numeric = _map(pool, numbers, self._numeric)
        label_name = self.config.label_col.name
        if label_name in table.column_names:
            labels = self._float_column(table, label_name, source)
            validate_labels(labels, source, label_name, first_line=first_row, unit="row")
            label = to_numpy(labels).astype(np.float32)
        elif require_label:
            raise _missing_column(table, label_name, source)
        else:
            label = np.zeros(n, dtype=np.float32)
        group_col = self.config.group_col
        group = None
        if group_col is not None and (require_label or group_col in table.column_names):
            group = self._group_ids(table, source, group_values)
        return EncodedColumns(categorical=categorical, numeric=numeric, label=label, group=group)

    def recode(self, position: int, distinct: pa.Array) -> np.ndarray:
        """int32 index of each key of a :attr:`LocalCodes.distinct` of the vocabulary field at
        ``position`` in ``schema.categorical``."""
        feature = self._categorical[position]
        lookup = self._fitted_lookups()[feature.name]
        kind = key_kind(feature)
        if kind == KEY_BUCKET:
            return lookup.indices(self._bucket_keys(distinct, feature))
        if kind == KEY_TEXT and lookup.has_empty:
            distinct = pc.if_else(pc.equal(distinct, ""), pa.scalar(None, pa.string()), distinct)
        return lookup.indices(distinct)

    def _local_codes(
        self, table: pa.Table, feature: FeatureSpec, source: Path | None
    ) -> LocalCodes:
        kind = key_kind(feature)
        if kind == KEY_BUCKET:
            col = self._float_column(table, feature.name, source)
        elif kind == KEY_TEXT:
            col = self._text_column(table, feature.name, source)
        else:
            col = self._tokens(table, feature, source)
        encoded = pc.dictionary_encode(col)
        if isinstance(encoded, pa.ChunkedArray):
            # the chunks share one dictionary
            chunks = encoded.chunks
            dictionary = chunks[0].dictionary if chunks else pa.array([], col.type)
            indices = pa.chunked_array([c.indices for c in chunks], pa.int32())
        else:
            dictionary, indices = encoded.dictionary, encoded.indices
        distinct = pa.concat_arrays([dictionary, pa.nulls(1, dictionary.type)])
        rows = to_numpy(pc.fill_null(indices, len(dictionary))).astype(np.int32, copy=False)
        return LocalCodes(distinct=distinct, rows=rows)

    def _encode_field(
        self, table: pa.Table, feature: FeatureSpec, lookup: Lookup, source: Path | None
    ) -> np.ndarray:
        """One vocabulary field's indices: int32, (n,), or (n, max_len) for a sequence."""
        if feature.is_sequence:
            assert feature.max_len is not None
            lists = self._sequence_lists(table, feature, source)
            out = np.zeros((table.num_rows, feature.max_len), dtype=np.int32)
            _scatter_sequences(out, lookup.indices(pc.list_flatten(lists)), _list_lengths(lists))
            return out
        kind = key_kind(feature)
        if kind == KEY_BUCKET:
            return self._encode_buckets(table, feature, lookup, source)
        if kind == KEY_TEXT and not lookup.has_empty:
            # "" is not in the vocabulary, so it gives OOV as a missing value does
            return lookup.indices(self._text_column(table, feature.name, source))
        return lookup.indices(self._tokens(table, feature, source))

    def _encode_buckets(
        self, table: pa.Table, feature: FeatureSpec, lookup: Lookup, source: Path | None
    ) -> np.ndarray:
        """Bucket and look up each distinct number once, then spread the indices to the rows."""
        col = self._float_column(table, feature.name, source).combine_chunks()
        encoded = pc.dictionary_encode(col)
        # one slot more, for the missing values (null indices)
        distinct = pa.concat_arrays([encoded.dictionary, pa.nulls(1, col.type)])
        codes = lookup.indices(self._bucket_keys(distinct, feature))
        return codes[to_numpy(pc.fill_null(encoded.indices, len(encoded.dictionary)))]

    def _bucket_keys(self, values: pa.Array, feature: FeatureSpec) -> pa.Array:
        """The integer bucket id of each number (null = missing), as one row would get it."""
        assert feature.preprocess is not None
        numbers = to_numpy(values).astype(np.float64)
        if feature.fill_na is not None:
            numbers = np.where(np.isnan(numbers), float(feature.fill_na), numbers)
        buckets = NUMERIC_BUCKETERS[feature.preprocess](numbers)
        # inf has no bucket id; treat it like a missing value (OOV).
        missing = ~np.isfinite(buckets)
        ints = np.where(missing, 0, buckets).astype(np.int64)
        return pa.array(ints, mask=missing)

    @property
    def schema(self) -> FeatureSchema:
        vocabs = self._fitted_vocabs()
        fields = [
            FieldInfo(
                f.name,
                "sequence" if f.is_sequence else "categorical",
                len(vocabs[f.name]) + FIRST_VOCAB_INDEX,
                f.max_len if f.is_sequence and f.max_len else 1,
                f.pooling or "sum",
            )
            for f in self._categorical
        ]
        fields += [FieldInfo(f.name, "numeric", 0) for f in self._numeric]
        return FeatureSchema(tuple(fields))

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: config, vocabularies (raw strings in index order from 2), schema."""
        vocabs = self._fitted_vocabs()
        return {
            "format": _STATE_FORMAT,
            "config": self.config.to_dict(),
            "vocabularies": {name: vocab.to_pylist() for name, vocab in vocabs.items()},
            **(
                {"scalers": {k: {"shift": a, "scale": b} for k, (a, b) in self._scalers.items()}}
                if self._scalers
                else {}
            ),
            "schema": self.schema.to_dict(),
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """Rebuild a fitted preprocessor from :meth:`state_dict` output (e.g. after JSON)."""
        if not isinstance(d, dict) or d.get("format") != _STATE_FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ConfigError(
                f"preprocessor state: key 'format': expected '{_STATE_FORMAT}', found {found!r}"
            )
        try:
            config = load_dataset_config(d["config"])
            raw_vocabs = d["vocabularies"]
        except KeyError as exc:
            raise ConfigError(f"preprocessor state: missing key {exc}") from None
        prep = cls(config)
        vocabs: dict[str, pa.Array] = {}
        for feature in prep._categorical:
            words = raw_vocabs.get(feature.name)
            if not isinstance(words, list):
                raise ConfigError(
                    f"preprocessor state: key 'vocabularies.{feature.name}': expected a list of strings"
                )
            vocabs[feature.name] = pa.array(words, type=pa.string())
        prep._set_vocabs(vocabs)
        prep._scalers = read_scalers(d.get("scalers") or {}, prep._numeric)
        if "schema" in d and FeatureSchema.from_dict(d["schema"]) != prep.schema:
            raise ConfigError("preprocessor state: key 'schema' does not match the vocabularies")
        return prep

    def _fitted_vocabs(self) -> dict[str, pa.Array]:
        if self._vocabs is None:
            raise RuntimeError("Preprocessor is not fitted: call fit() on the train split first")
        return self._vocabs

    def _set_vocabs(self, vocabs: dict[str, pa.Array]) -> None:
        # built here, not on first use, as fields are looked up from several threads
        self._lookups = {
            f.name: Lookup(vocabs[f.name], by_integer=key_kind(f) == KEY_BUCKET)
            for f in self._categorical
        }
        self._vocabs = vocabs

    def _fitted_lookups(self) -> dict[str, Lookup]:
        self._fitted_vocabs()
        assert self._lookups is not None
        return self._lookups

    def _text_column(self, table: pa.Table, name: str, source: Path | None) -> pa.ChunkedArray:
        col = self._column(table, name, source)
        return col.cast(pa.string()) if col.type != pa.string() else col

    def _column(self, table: pa.Table, name: str, source: Path | None) -> pa.ChunkedArray:
        if name not in table.column_names:
            raise _missing_column(table, name, source)
        return table[name]

    def _filled_numbers(
        self, table: pa.Table, feature: FeatureSpec, source: Path | None
    ) -> np.ndarray:
        """A numeric field as float64 with its missing values filled (``fill_na``, else 0)."""
        values = to_numpy(self._float_column(table, feature.name, source)).astype(np.float64)
        fill = 0.0 if feature.fill_na is None else float(feature.fill_na)
        return np.where(np.isnan(values), fill, values)

    def _float_column(self, table: pa.Table, name: str, source: Path | None) -> pa.ChunkedArray:
        col = self._column(table, name, source)
        if col.type == pa.float64():
            return col
        try:
            return col.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            where = f"{source}: " if source is not None else ""
            raise DataError(
                f"{where}column '{name}' has type {col.type}, expected numbers"
            ) from None

    def _sequence_lists(
        self, table: pa.Table, feature: FeatureSpec, source: Path | None
    ) -> pa.ListArray:
        """A sequence field's rows as lists of tokens; empty tokens and missing rows give none."""
        col = self._column(table, feature.name, source).combine_chunks()
        if col.type != pa.string():
            col = col.cast(pa.string())
        col = pc.fill_null(col, "")
        lists = pc.split_pattern(col, pattern=feature.splitter or "|")
        flat = pc.list_flatten(lists)
        if pc.any(pc.equal(flat, "")).as_py():
            # "a||b", a trailing separator or an empty cell: drop the empty tokens
            keep = to_numpy(pc.not_equal(flat, "")).astype(bool)
            rows = np.repeat(np.arange(len(lists)), _list_lengths(lists))
            lengths = np.bincount(rows[keep], minlength=len(lists))
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            lists = pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(keep)))
        return lists

    def _tokens(
        self, table: pa.Table, feature: FeatureSpec, source: Path | None
    ) -> pa.ChunkedArray | pa.Array:
        """The strings a text-keyed field's vocabulary is keyed by; null = missing.

        For a sequence field: every token of every row, flattened. (A bucketed
        number field is keyed by the text of :meth:`_bucket_keys`.)
        """
        if feature.is_sequence:
            return pc.list_flatten(self._sequence_lists(table, feature, source))
        col = self._text_column(table, feature.name, source)
        if feature.preprocess is not None:
            assert feature.preprocess in TEXT_PREPROCESSORS, feature.preprocess
            col = TEXT_PREPROCESSORS[feature.preprocess](col)
            return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        # An empty cell in a file that was not read by read_table is still missing.
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        if feature.fill_na is not None:
            col = pc.fill_null(col, pa.scalar(str(feature.fill_na), pa.string()))
        return col

    def _group_ids(
        self, table: pa.Table, source: Path | None, group_values: pa.Array | None
    ) -> np.ndarray:
        assert self.config.group_col is not None
        col = self._column(table, self.config.group_col, source).combine_chunks()
        if col.type != pa.string():
            col = col.cast(pa.string())
        if group_values is None:
            encoded = pc.dictionary_encode(col)
            ids, n_values = encoded.indices, len(encoded.dictionary)
        else:
            ids, n_values = pc.index_in(col, value_set=group_values), len(group_values)
        # Missing group values share one extra id after the real ones.
        return to_numpy(pc.fill_null(ids, n_values)).astype(np.int64)


def distinct_values(chunks: Iterable[pa.ChunkedArray | pa.Array]) -> pa.Array:
    """The distinct non-null strings of a column read in pieces (e.g. a split's gAUC groups)."""
    seen: list[pa.Array] = []
    for values in chunks:
        values = values.cast(pa.string()) if values.type != pa.string() else values
        seen.append(
            pc.unique(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
        )
        if len(seen) > 16:
            seen = [pc.unique(pa.concat_arrays(seen))]
    if not seen:
        return pa.array([], type=pa.string())
    merged = pc.unique(pa.concat_arrays(seen))
    return merged.filter(pc.is_valid(merged))


@contextmanager
def field_threads(fields: int) -> Iterator[Executor | None]:
    """Threads to work on several fields at once (Arrow and numpy kernels release the GIL)."""
    workers = min(fields, pa.cpu_count())
    if workers < 2:
        yield None
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="tf4ctr-field") as pool:
        yield pool


def _map(pool: Executor | None, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]``, on ``pool`` if given; the first item to fail raises."""
    if pool is None:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def _list_offsets(lists: pa.ListArray) -> np.ndarray:
    return to_numpy(lists.offsets).astype(np.int64)


def _list_lengths(lists: pa.ListArray) -> np.ndarray:
    return np.diff(_list_offsets(lists))


def _scatter_sequences(out: np.ndarray, flat_index: np.ndarray, lengths: np.ndarray) -> None:
    """Write each row's first ``out.shape[1]`` token indices left-aligned; the rest stays 0 (padding)."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(len(flat_index)) - starts
    rows = np.repeat(np.arange(len(lengths)), lengths)
    keep = position < out.shape[1]
    out[rows[keep], position[keep]] = flat_index[keep]


def _missing_column(table: pa.Table, name: str, source: Path | None) -> DataError:
    where = f"{source}: " if source is not None else "table: "
    return DataError(f"{where}missing column '{name}' (has: {', '.join(table.column_names)})")
