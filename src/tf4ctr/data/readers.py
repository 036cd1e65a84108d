"""Read one split file (CSV or parquet) into an Arrow table of just the columns a config needs.

Column types are fixed here, once, so the preprocessor never has to guess:
text-keyed categorical columns are read as strings (a vocabulary is keyed by
the raw text, so ``007`` and ``7`` stay different values), number-fed columns
and the label as float64, a group column that is not a feature as strings.
Empty cells are nulls.

Every problem with the file becomes a one-line :class:`DataError` naming the
file and, where there is one, the line (1-based, the header being line 1).
Locating the line costs a second read of the file, but only once something
is already wrong. Line numbers assume one line per row: a quoted field with a
line break in it, or a blank line, shifts the numbers after it.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tf4ctr.config import FLOAT32_MAX
from tf4ctr.data.csv_errors import (
    first_line_bytes,
    first_non_number,
    first_ragged_row,
    ragged_row_error,
)
from tf4ctr.data.formats import CRITEO_COLUMNS
from tf4ctr.data.schema import DatasetConfig
from tf4ctr.errors import ConfigError, DataError, first_message_line

log = logging.getLogger("tf4ctr")

__all__ = [
    "column_types",
    "iter_chunks",
    "read_table",
    "rows_table",
    "sha256_file",
    "treat_non_finite",
    "validate_labels",
]

# extensions Arrow reads as compressed streams
COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".zst", ".lz4", ".br"})

_CSV_SUFFIXES = (".csv", ".txt", ".csv.gz", ".csv.bz2", ".csv.zst", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# Arrow parses a CSV block several times slower once the block outgrows the CPU caches
# (3.5x at 64 MiB against 1 MiB on Criteo rows), so files are parsed in blocks of this size
# and the blocks regrouped into tables of about block_bytes. Its streaming reader also reads
# about 32 blocks ahead of the consumer, whatever the consumer's pace: at 1 MiB that window
# held ~35 MB of a file that outgrew it (what made predict's peak grow from a 300k-row file to
# a 3M-row one), at 256 KiB ~9 MB, parsed as fast (issue 30.7).
_PARSE_BLOCK_BYTES = 256 << 10


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes; the cache key uses it so a changed file is never served stale."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory (expected a data file)") from None
    return digest.hexdigest()


def column_types(config: DatasetConfig) -> dict[str, pa.DataType]:
    """Arrow type each needed column is read as, label first, in config order.

    A group column that is also a feature keeps the feature's type.
    """
    types: dict[str, pa.DataType] = {config.label_col.name: pa.float64()}
    for feature in config.feature_cols:
        types[feature.name] = pa.float64() if feature.reads_numbers else pa.string()
    if config.group_col is not None and config.group_col not in types:
        types[config.group_col] = pa.string()
    return types


def read_table(path: Path, config: DatasetConfig, *, require_label: bool = True) -> pa.Table:
    """Read the config's columns from one split file; raise DataError naming file and line.

    With ``require_label=False`` (prediction input) a file without the label
    column (or without a group column that is not a feature) is accepted and
    the table simply lacks it; a label column that is present is still
    checked to be 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (expected a data file)")
    tables = [table for table, _ in iter_chunks(path, config, require_label=require_label)]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def reports_bytes(path: Path, config: DatasetConfig) -> bool:
    """Whether :func:`iter_chunks` can report its position in this file (``on_bytes``)."""
    path = Path(path)
    return _data_format(path, config) != "parquet" and path.suffix not in COMPRESSED_SUFFIXES


def byte_total(path: Path, config: DatasetConfig) -> int | None:
    """The total of a progress bar in bytes for a read of this file: its size where
    :func:`iter_chunks` reports its position in it (a plain CSV or TSV), else None (count
    rows instead). None for a missing file too: the reader reports that, with its message."""
    path = Path(path)
    return path.stat().st_size if path.is_file() and reports_bytes(path, config) else None


def iter_chunks(
    path: Path,
    config: DatasetConfig,
    *,
    require_label: bool = True,
    block_bytes: int = 64 << 20,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[pa.Table, int]]:
    """Read a split file piece by piece: yields (table, line number of its first row).

    The streaming counterpart of :func:`read_table` for files larger than
    memory: memory holds one block of ``block_bytes`` of text (or one parquet
    row group) at a time, whatever the file's length. Columns, types, header
    checks, label checks and error messages are those of :func:`read_table`.
    Formats: ``csv``, ``parquet``, and ``criteo_tsv`` (Kaggle's headerless,
    tab-separated ``train.txt``).

    ``on_bytes`` (for progress bars) is called with the bytes of the file read so far, for
    uncompressed CSV and TSV files (a compressed file's position says little about its rows).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (expected a data file)")
    fmt = _data_format(path, config)
    types = column_types(config)
    if fmt == "parquet":
        chunks = _parquet_chunks(path, config, types, require_label)
    else:
        chunks = _csv_chunks(path, config, types, require_label, fmt, block_bytes, on_bytes)
    label = config.label_col.name
    unit = "row" if fmt == "parquet" else "line"
    numbers = [f.name for f in config.feature_cols if f.reads_numbers]
    treated: dict[str, int] = {}
    rows = 0
    for table, first_line in chunks:
        if label in table.column_names:
            validate_labels(table[label], path, label, first_line=first_line, unit=unit)
        table = treat_non_finite(
            table, numbers, config.non_finite, path, first_line=first_line, unit=unit,
            counts=treated,
        )  # fmt: skip
        rows += table.num_rows
        yield table, first_line
    for name, n in treated.items():
        log.warning(
            "%s: %d value(s) of column '%s' were infinite or beyond float32's range; "
            "treated as %s (non_finite: %s)",
            path, n, name, "missing" if config.non_finite == "missing" else "±3.4e38 (clipped)",
            config.non_finite,
        )  # fmt: skip
    if rows == 0:
        if fmt == "csv":
            raise DataError(
                f"{path}: file has a header but no rows (expected a header and at least one row)"
            )
        raise DataError(f"{path}: file has no rows (expected at least one row)")


def _csv_chunks(
    path: Path,
    config: DatasetConfig,
    types: dict[str, pa.DataType],
    require_label: bool,
    fmt: str,
    block_bytes: int,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[pa.Table, int]]:
    if fmt == "criteo_tsv":
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty (expected Criteo rows)")
        header = list(CRITEO_COLUMNS)
        read_options = pacsv.ReadOptions(column_names=header, block_size=block_bytes)
        parse_options = pacsv.ParseOptions(delimiter="\t", quote_char=False)
        line = 1
    else:
        try:
            header = _read_header(path)
        except OSError as exc:  # a damaged compressed file, or unreadable
            raise DataError(
                f"{path}: cannot read the file ({first_message_line(str(exc))})"
            ) from None
        if not header:
            raise DataError(f"{path}: file is empty (expected a header and at least one row)")
        read_options = pacsv.ReadOptions(block_size=block_bytes)
        parse_options = pacsv.ParseOptions()
        line = 2
    types = _needed(types, header, config, require_label)
    _check_header(path, header, types)
    names = list(types)
    parse_block = min(block_bytes, _PARSE_BLOCK_BYTES)
    per_table = max(1, block_bytes // parse_block)
    try:
        batches = _csv_batches(
            path, read_options, parse_options, _csv_convert_options(types), parse_block, on_bytes
        )
        pending: list[pa.RecordBatch] = []
        for batch in batches:
            if batch.num_rows:
                pending.append(batch)
            if len(pending) == per_table:
                table = pa.Table.from_batches(pending).select(names)
                yield table, line
                line += table.num_rows
                pending = []
        if pending:
            yield pa.Table.from_batches(pending).select(names), line
    except OSError as exc:  # pa.ArrowIOError: a damaged compressed stream, a read failure
        raise DataError(f"{path}: cannot read the file ({first_message_line(str(exc))})") from None
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "conversion error" in message or "In CSV column" in message:
            numeric = [n for n, t in types.items() if pa.types.is_floating(t)]
            raise _locate_bad_number(path, numeric, message, read_options, parse_options) from None
        row = first_ragged_row(
            path,
            parse_options,
            _csv_convert_options({k: pa.string() for k in types}),
            read_options.column_names or None,
        )
        if row is not None:
            raise ragged_row_error(path, row) from None
        raise DataError(f"{path}: cannot parse CSV ({first_message_line(message)})") from None


def _csv_batches(
    path: Path,
    read_options: pacsv.ReadOptions,
    parse_options: pacsv.ParseOptions,
    convert_options: pacsv.ConvertOptions,
    block: int,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's record batches, parsed in blocks of ``block`` bytes.

    A row longer than a block cannot be parsed: then the rest of the file is
    read in blocks of ``read_options.block_size``, as it was before files were
    parsed in small blocks.
    """
    largest_block = max(block, read_options.block_size)
    rows = 0
    while True:
        options = pacsv.ReadOptions(
            column_names=read_options.column_names,
            block_size=block,
            # past the rows already yielded (skip_rows could not skip past the first block)
            skip_rows_after_names=rows,
        )
        # a plain file opened here, so its position can be read; a compressed one by its
        # path, which lets Arrow pick the codec from the extension
        source = (
            pa.OSFile(str(path)) if on_bytes and path.suffix not in COMPRESSED_SUFFIXES else None
        )
        try:
            reader = pacsv.open_csv(
                source if source is not None else path,
                read_options=options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            for batch in reader:
                rows += batch.num_rows
                if source is not None and on_bytes is not None:
                    on_bytes(source.tell())
                yield batch
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block >= largest_block:
                raise
            block = largest_block
        finally:
            if source is not None:
                source.close()


def _parquet_chunks(
    path: Path, config: DatasetConfig, types: dict[str, pa.DataType], require_label: bool
) -> Iterator[tuple[pa.Table, int]]:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (expected a header and at least one row)")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path}: not a readable parquet file ({first_message_line(str(exc))})"
        ) from None
    header = list(parquet.schema_arrow.names)
    types = _needed(types, header, config, require_label)
    _check_header(path, header, types)
    row = 1
    for i in range(parquet.num_row_groups):
        try:
            group = parquet.read_row_group(i, columns=list(types))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"{path}: not a readable parquet file ({first_message_line(str(exc))})"
            ) from None
        if group.num_rows:
            yield _cast_parquet_columns(path, group, types), row
            row += group.num_rows


def treat_non_finite(
    table: pa.Table,
    names: list[str],
    treatment: str,
    path: Path | str | None,
    *,
    first_line: int = 2,
    unit: str = "line",
    counts: dict[str, int] | None = None,
) -> pa.Table:
    """Find ±inf and values beyond float32's range in number-fed columns, and apply ``treatment``.

    Models compute in float32, where such a value is infinite and turns the loss into NaN.
    ``error`` raises a DataError naming file, line and column; ``missing`` empties the cell
    (its ``fill_na`` then applies); ``clip`` puts it at ±FLOAT32_MAX. NaN ("nan" in a
    file) already means missing. ``counts`` collects how many cells were treated per column.
    """
    for name in names:
        if name not in table.column_names:
            continue
        col = table[name]
        # NaN compares false and nulls are skipped: both mean "missing", which is fine
        if not pc.any(pc.greater(pc.abs(col), FLOAT32_MAX)).as_py():
            continue
        bad = pc.fill_null(pc.greater(pc.abs(col), FLOAT32_MAX), False)
        if treatment == "error":
            idx = int(np.argmax(bad.to_numpy(zero_copy_only=False)))
            where = f"{path}: " if path is not None else ""
            raise DataError(
                f"{where}{unit} {idx + first_line}: column '{name}' holds {col[idx].as_py()!r}, "
                "beyond the float32 range a model computes in (expected a finite number of "
                "magnitude <= 3.4e38; set non_finite: missing or clip in the dataset config "
                "to treat such values)"
            )
        if counts is not None:
            counts[name] = counts.get(name, 0) + int(pc.sum(bad).as_py())
        if treatment == "missing":
            fixed = pc.if_else(bad, pa.scalar(None, col.type), col)
        else:
            nearest = pc.if_else(pc.greater(col, 0), FLOAT32_MAX, -FLOAT32_MAX)
            fixed = pc.if_else(bad, nearest, col)
        table = table.set_column(table.column_names.index(name), name, fixed)
    return table


def validate_labels(
    values: pa.ChunkedArray | pa.Array | np.ndarray,
    path: Path | str | None,
    label: str,
    *,
    first_line: int = 2,
    unit: str = "line",
) -> None:
    """Raise DataError at the first label that is not 0 or 1 (missing counts as wrong).

    ``first_line`` is the number of the first row's line (2 for a CSV with a
    header), so the message points at the line a user opens in an editor.
    """
    arr = values.to_numpy(zero_copy_only=False) if not isinstance(values, np.ndarray) else values
    arr = np.asarray(arr, dtype=np.float64)
    bad = ~((arr == 0.0) | (arr == 1.0))
    if not bad.any():
        return
    idx = int(np.argmax(bad))
    value = arr[idx]
    found = "an empty value" if np.isnan(value) else f"{value:g}"
    where = f"{path}: " if path is not None else ""
    raise DataError(
        f"{where}{unit} {idx + first_line}: label '{label}' must be 0 or 1, found {found}"
    )


def _data_format(path: Path, config: DatasetConfig) -> str:
    if config.data_format != "auto":
        return config.data_format
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    origin = config.source or "dataset config"
    raise ConfigError(
        f"{origin}: key 'data_format': cannot tell the format of {path} from its extension "
        "(expected data_format: csv or parquet)"
    )


def _needed(
    types: dict[str, pa.DataType], header: list[str], config: DatasetConfig, require_label: bool
) -> dict[str, pa.DataType]:
    if require_label:
        return types
    # Prediction input may lack the label and a group column that only serves gAUC.
    optional = {config.label_col.name}
    if config.group_col is not None and config.group_col not in config.feature_names:
        optional.add(config.group_col)
    present = set(header)
    return {k: v for k, v in types.items() if k in present or k not in optional}


def _check_header(path: Path, header: list[str], needed: dict[str, pa.DataType]) -> None:
    present = set(header)
    for name in needed:
        if name not in present:
            raise DataError(f"{path}: missing column '{name}' (header has: {', '.join(header)})")
        if header.count(name) > 1:
            raise DataError(
                f"{path}: column '{name}' appears {header.count(name)} times in the header"
            )


def _read_header(path: Path) -> list[str]:
    """First line of the (possibly compressed) file, split as CSV."""
    line = first_line_bytes(path)
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: line 1: header is not UTF-8 text") from None
    if not text.strip():
        return []
    if "\r" in text:
        # the CSV reader would end the header there and misread every row after it
        raise DataError(
            f"{path}: line 1: the header holds a carriage return (\\r) inside the line "
            "(expected one header line ending in \\n or \\r\\n)"
        )
    try:
        return next(csv.reader([text]))
    except csv.Error as exc:
        raise DataError(f"{path}: line 1: header is not valid CSV ({exc})") from None


def _csv_convert_options(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    # Only the empty cell means "missing": pyarrow's default list would also
    # turn a real category value such as "NA" or "null" into a missing one.
    return pacsv.ConvertOptions(
        include_columns=list(types),
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def _locate_bad_number(
    path: Path,
    numeric: list[str],
    message: str,
    read_options: pacsv.ReadOptions | None = None,
    parse_options: pacsv.ParseOptions | None = None,
) -> DataError:
    if numeric:
        table = pacsv.read_csv(
            path,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=_csv_convert_options({k: pa.string() for k in numeric}),
        )
        best = first_non_number(table, numeric)
        if best is not None:
            idx, name, value = best
            value = value if len(value) <= 40 else value[:37] + "..."
            first_line = 1 if read_options is not None and read_options.column_names else 2
            return DataError(
                f"{path}: line {idx + first_line}: column '{name}' expected a number, "
                f"found {value!r}"
            )
    return DataError(f"{path}: cannot read CSV ({first_message_line(message)})")


def as_arrow(rows: Any, where: str = "rows") -> pa.Table:
    """A pandas DataFrame, a pyarrow Table or a dict of columns as a pyarrow Table."""
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, dict):
        try:
            return pa.table(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataError(
                f"{where}: not a table of columns ({first_message_line(str(exc))})"
            ) from None
    if type(rows).__module__.startswith("pandas"):
        return pa.Table.from_pandas(rows, preserve_index=False)
    raise DataError(
        f"{where}: expected a pandas DataFrame, a pyarrow Table or a dict of columns, "
        f"found {type(rows).__name__}"
    )


def rows_table(
    rows: Any, config: DatasetConfig, *, require_label: bool, where: str = "rows"
) -> pa.Table:
    """In-memory rows (a pandas DataFrame, a pyarrow Table or a dict of columns) as the table
    :func:`read_table` would give for a file: the config's columns with the reader's types,
    labels and numbers checked alike. ``where`` names the rows in errors."""
    table = as_arrow(rows, where)
    types = _needed(column_types(config), list(table.column_names), config, require_label)
    _check_header(Path(where), list(table.column_names), types)
    table = _cast_parquet_columns(Path(where), table.select(list(types)), types)
    if table.num_rows == 0:
        raise DataError(f"{where}: no rows (expected at least one row)")
    label = config.label_col.name
    if label in table.column_names:
        validate_labels(table[label], where, label, first_line=0, unit="row")
    numbers = [f.name for f in config.feature_cols if f.reads_numbers]
    return treat_non_finite(table, numbers, config.non_finite, where, first_line=0, unit="row")


def _cast_parquet_columns(path: Path, table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """The needed columns with the reader's types (dictionary and integer columns converted)."""
    columns = []
    for name, target in types.items():
        col = table[name]
        if col.type != target:
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            try:
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                expected = "numbers" if pa.types.is_floating(target) else "text or integers"
                raise DataError(
                    f"{path}: column '{name}' has type {col.type}, expected {expected}"
                ) from None
        columns.append(col)
    return pa.table(columns, names=list(types))
