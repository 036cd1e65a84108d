"""Locate the line and cell behind a CSV read that failed, for a one-line DataError.

Arrow's threaded CSV reader says that a row had the wrong number of fields or
that a cell was not a number, but not (reliably) where. These helpers re-read
the file, once something is already wrong, to name the line and the cell. Both
the BARS CSV reader (:mod:`tf4ctr.data.readers`) and the raw-format readers
(:mod:`tf4ctr.data.formats`) use them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tf4ctr.errors import DataError

__all__ = [
    "NUMBER_PATTERN",
    "first_line_bytes",
    "first_non_number",
    "first_ragged_row",
    "ragged_row_error",
]

# What pyarrow's float parser accepts, near enough to point at the bad cell; every
# reader of numbers (CSV, parquet strings, the raw Criteo/libsvm formats) uses this one.
NUMBER_PATTERN = r"^\s*[+-]?(((\d+\.?\d*)|(\.\d+))([eE][+-]?\d+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*$"


def first_line_bytes(path: Path) -> bytes:
    """The first line of a (possibly compressed) file, without its line ending."""
    buf = b""
    with pa.input_stream(str(path), compression="detect") as stream:
        while b"\n" not in buf:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            buf += chunk
    return buf.split(b"\n", 1)[0].rstrip(b"\r")


def first_ragged_row(
    path: Path,
    parse_options: pacsv.ParseOptions,
    convert_options: pacsv.ConvertOptions | None = None,
    column_names: list[str] | None = None,
) -> pacsv.InvalidRow | None:
    """The first row whose field count is wrong, with its line number.

    A threaded read reports a bad row without its number (and maybe not the
    first bad row); a single-threaded re-read with a handler knows both.
    """
    found: list[pacsv.InvalidRow] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append(row)
        return "error"

    options = pacsv.ParseOptions(
        delimiter=parse_options.delimiter,
        quote_char=parse_options.quote_char,
        invalid_row_handler=handler,
    )
    with contextlib.suppress(pa.ArrowInvalid):
        pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=column_names or None, use_threads=False),
            parse_options=options,
            convert_options=convert_options,
        )
    return found[0] if found and found[0].number is not None else None


def ragged_row_error(path: Path, row: pacsv.InvalidRow) -> DataError:
    return DataError(
        f"{path}: line {row.number}: expected {row.expected_columns} fields, found {row.actual_columns}"
    )


def first_non_number(table: pa.Table, names: list[str]) -> tuple[int, str, str] | None:
    """(row index, column, text) of the earliest non-empty cell that is not a number."""
    best: tuple[int, str, str] | None = None
    for name in names:
        col = table[name]
        ok = pc.or_kleene(pc.is_null(col), pc.match_substring_regex(col, NUMBER_PATTERN))
        bad = ~ok.to_numpy(zero_copy_only=False)
        if bad.any():
            idx = int(np.argmax(bad))
            if best is None or idx < best[0]:
                best = (idx, name, str(col[idx].as_py()))
    return best
