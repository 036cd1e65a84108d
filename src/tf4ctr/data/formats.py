"""Readers for the raw formats the public CTR datasets ship in, before they become BARS CSVs.

Each reader returns a :class:`pyarrow.Table` of named columns (categorical
values as strings, numbers and the label as float64, missing as null) that
can be written to CSV/parquet and then read by :func:`tf4ctr.data.read_table`
with a dataset config, or handed to the preprocessor directly.

Why a separate module: :mod:`tf4ctr.data.readers` reads files that already
have a header and one column per field. The raw downloads do not: Criteo's
``train.txt`` has no header, libfm files pack ``index:value`` pairs, ML-1M
uses ``::`` between fields and keeps users and ratings in separate files.

Parsing is done by Arrow kernels over whole columns; Python only looks at a
row once something is wrong, to name the line. Line numbers are 1-based and
count every physical line of the file, header included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tf4ctr.data.csv_errors import (
    NUMBER_PATTERN,
    first_line_bytes,
    first_non_number,
    first_ragged_row,
    ragged_row_error,
)
from tf4ctr.errors import DataError

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_COLUMNS",
    "CRITEO_NUMERIC",
    "FRAPPE_FIELDS",
    "criteo_feature_cols",
    "ML1M_CLICK_THRESHOLD",
    "ML1M_FIELDS",
    "read_criteo_tsv",
    "read_frappe_raw",
    "read_libfm",
    "read_ml1m",
    "read_ml1m_merged",
]

CRITEO_NUMERIC = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL)

FRAPPE_FIELDS = (
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
)


def criteo_feature_cols(bucketer: str) -> list[dict]:
    """Dataset-config ``feature_cols`` of Criteo: I1-I13 bucketed by ``bucketer`` (missing
    counts filled with 0 first), C1-C26 as text."""
    return [
        {"name": list(CRITEO_NUMERIC), "active": True, "type": "categorical", "dtype": "float",
         "preprocess": bucketer, "fill_na": 0},
        {"name": list(CRITEO_CATEGORICAL), "active": True, "type": "categorical", "dtype": "str"},
    ]  # fmt: skip


ML1M_FIELDS = ("UserID", "Gender", "Age", "Occupation", "MovieID")
# A rating above this is a click. ML-1M rates 1..5; CTR versions of it keep
# every rating (the paper's splits add up to all 1,000,209 of them) and call
# 4 and 5 a positive, 1 to 3 a negative, so no row is dropped.
ML1M_CLICK_THRESHOLD = 3

# A byte that never occurs in text files, so a whole line lands in one cell.
_NO_DELIMITER = "\x1f"


# --------------------------------------------------------------------------- helpers


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (expected a data file)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def _first_line(path: Path, encoding: str = "utf-8") -> str:
    """First line of a (possibly compressed) file, without its line ending."""
    return first_line_bytes(path).decode(encoding, errors="replace")


def _read_lines(path: Path, encoding: str = "utf-8") -> pa.ChunkedArray:
    """Every line of the file as one string each; element i is line i + 1.

    Empty lines are kept (as "") so that positions stay line numbers; callers
    drop them. Reading through Arrow's CSV reader with a delimiter that text
    never contains gives a multi-threaded line splitter without a Python loop.
    """
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=["line"], encoding=encoding, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=_NO_DELIMITER,
                quote_char=False,
                escape_char=False,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"line": pa.string()}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: cannot read the file as text ({_short(str(exc))})") from None
    return table["line"]


def _short(message: str) -> str:
    text = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return text if len(text) <= 160 else text[:157] + "..."


def _split_fixed(
    lines: pa.ChunkedArray,
    pattern: str,
    n_fields: int,
    path: Path,
    first_line: int,
    what: str,
    *,
    whitespace: bool = False,
) -> tuple[list[pa.Array], np.ndarray]:
    """Split each non-blank line into exactly ``n_fields`` pieces, one array per piece.

    Returns the pieces and the 1-based line number of each kept row, so later
    checks can still name the line. A line with another count is a DataError.
    """
    lines = pc.utf8_rtrim(lines.combine_chunks(), characters="\r")
    stripped = pc.utf8_trim_whitespace(lines)
    keep = pc.not_equal(stripped, "").to_numpy(zero_copy_only=False)
    line_no = np.flatnonzero(keep) + first_line
    kept = stripped.filter(pa.array(keep)) if whitespace else lines.filter(pa.array(keep))
    if len(kept) == 0:
        raise DataError(f"{path}: no data lines (expected {what})")
    parts = pc.utf8_split_whitespace(kept) if whitespace else pc.split_pattern(kept, pattern)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    bad = counts != n_fields
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{path}: line {line_no[i]}: expected {n_fields} fields ({what}), found {counts[i]}"
        )
    # Every list has n_fields items, so piece j of row i sits at i * n_fields + j.
    flat = pc.list_flatten(parts)
    starts = np.arange(len(kept), dtype=np.int64) * n_fields
    return [flat.take(pa.array(starts + j)) for j in range(n_fields)], line_no


def _to_float(values: pa.Array, path: Path, line_no: np.ndarray, what: str) -> pa.Array:
    """Cast text to float64; the first unparseable cell is a DataError naming its line."""
    ok = pc.match_substring_regex(values, NUMBER_PATTERN).to_numpy(zero_copy_only=False)
    if not ok.all():
        i = int(np.argmax(~ok))
        raise DataError(
            f"{path}: line {line_no[i]}: {what} expected a number, found {values[i].as_py()!r}"
        )
    return pc.cast(pc.utf8_trim_whitespace(values), pa.float64())


def _binary_label(
    values: pa.Array, path: Path, line_no: np.ndarray, *, allow_minus_one: bool
) -> pa.Array:
    """0/1 labels as float64; -1 means 0 when allowed (libfm's negative class)."""
    arr = _to_float(values, path, line_no, "label").to_numpy(zero_copy_only=False)
    if allow_minus_one:
        arr = np.where(arr == -1.0, 0.0, arr)
    bad = ~((arr == 0.0) | (arr == 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        expected = "-1, 0 or 1" if allow_minus_one else "0 or 1"
        raise DataError(f"{path}: line {line_no[i]}: label expected {expected}, found {arr[i]:g}")
    return pa.array(arr, type=pa.float64())


# --------------------------------------------------------------------------- Criteo


def read_criteo_tsv(path: str | Path, *, with_label: bool = True) -> pa.Table:
    """Read Criteo display-ads rows: label, I1..I13 (float64), C1..C26 (string).

    The Kaggle ``train.txt``/``test.txt`` layout is tab-separated with no
    header (``test.txt`` has no label: pass ``with_label=False``). Empty cells
    become nulls: Criteo leaves many counts and ids out, and the
    preprocessing decides what a missing value means. The integer counts are
    returned as float64 because that is how the bucketers read them.

    Also accepted, because the small public samples use it: a comma-separated
    file whose first line is the header ``label,I1,...,C26`` (the DeepCTR and
    torch-rechub samples, integers written as ``260.0``). It is recognised by
    that header; its columns are reordered to the canonical order.
    """
    path = _check_file(Path(path))
    names = list(CRITEO_COLUMNS if with_label else CRITEO_COLUMNS[1:])
    first = _first_line(path)
    header_csv = "\t" not in first and first.split(",")[0].strip().lower() == "label"
    if header_csv:
        header = [h.strip() for h in first.split(",")]
        missing = [n for n in CRITEO_COLUMNS if n not in header]
        if missing:
            raise DataError(
                f"{path}: line 1: header lacks {', '.join(missing[:5])} "
                "(expected label,I1..I13,C1..C26)"
            )
        names = list(CRITEO_COLUMNS)
        read_opts = pacsv.ReadOptions(block_size=1 << 24)
        parse_opts = pacsv.ParseOptions(delimiter=",")
        first_row_line = 2
    else:
        read_opts = pacsv.ReadOptions(column_names=names, block_size=1 << 24)
        parse_opts = pacsv.ParseOptions(delimiter="\t", quote_char=False)
        first_row_line = 1
    types = {n: (pa.float64() if n == "label" or n.startswith("I") else pa.string()) for n in names}
    convert = pacsv.ConvertOptions(
        include_columns=names,
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(
            path, read_options=read_opts, parse_options=parse_opts, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        raise _locate_criteo_error(
            path, names, read_opts, parse_opts, first_row_line, exc
        ) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows (expected Criteo rows)")
    table = table.select(names)
    if with_label:
        label = table["label"].combine_chunks()
        line_no = np.arange(table.num_rows) + first_row_line
        arr = label.to_numpy(zero_copy_only=False)
        bad = ~((arr == 0.0) | (arr == 1.0))
        if bad.any():
            i = int(np.argmax(bad))
            found = "an empty value" if np.isnan(arr[i]) else f"{arr[i]:g}"
            raise DataError(f"{path}: line {line_no[i]}: label expected 0 or 1, found {found}")
    return table


def _locate_criteo_error(
    path: Path,
    names: list[str],
    read_opts: pacsv.ReadOptions,
    parse_opts: pacsv.ParseOptions,
    first_row_line: int,
    exc: pa.ArrowInvalid,
) -> DataError:
    """Turn Arrow's message into "line N: ..." by re-reading, only after a failure."""
    message = str(exc)
    if "CSV parse error" in message:
        row = first_ragged_row(
            path,
            parse_opts,
            pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
            column_names=list(read_opts.column_names) or None,
        )
        if row is not None:
            return DataError(
                f"{path}: line {row.number}: expected {row.expected_columns} fields "
                f"(Criteo label, I1..I13, C1..C26), found {row.actual_columns}"
            )
        return DataError(f"{path}: cannot parse ({_short(message)})")
    if "conversion error" in message or "CSV conversion" in message:
        raw = pacsv.read_csv(
            path,
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=pacsv.ConvertOptions(
                include_columns=names,
                column_types={n: pa.string() for n in names},
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
        numeric = [n for n in names if n == "label" or n.startswith("I")]
        best = first_non_number(raw, numeric)
        if best is not None:
            idx, name, value = best
            return DataError(
                f"{path}: line {idx + first_row_line}: column '{name}' expected a number, "
                f"found {value[:40]!r}"
            )
    return DataError(f"{path}: cannot read ({_short(message)})")


# --------------------------------------------------------------------------- libfm


def read_libfm(path: str | Path, field_names: list[str] | tuple[str, ...]) -> pa.Table:
    """Read libfm/libsvm lines ``label idx:val idx:val ...`` with one feature per field.

    This is how the NFM/AFN releases of Frappe and MovieLens (ML-tag) are
    stored: every line has one active one-hot feature for each field, in
    field order. The field value becomes the feature index as text (so the
    vocabulary is keyed by the global index, as in the BARS CSVs); the value
    after ``:`` must be 1, since dropping any other value would lose data.
    Labels -1/1 and 0/1 both map to 0/1. CRLF line endings are accepted.
    """
    path = _check_file(Path(path))
    fields = [str(f) for f in field_names]
    if not fields:
        raise DataError(f"{path}: no field names given (expected one name per libfm feature)")
    if len(set(fields)) != len(fields) or "label" in fields:
        raise DataError(f"{path}: field names must be distinct and not 'label', got {fields}")
    lines = _read_lines(path)
    parts, line_no = _split_fixed(
        lines,
        " ",
        len(fields) + 1,
        path,
        1,
        f"a label and {len(fields)} idx:val pairs",
        whitespace=True,
    )
    columns: dict[str, pa.Array] = {
        "label": _binary_label(parts[0], path, line_no, allow_minus_one=True)
    }
    for name, piece in zip(fields, parts[1:], strict=True):
        pair = pc.split_pattern(piece, ":", max_splits=1)
        n = pc.list_value_length(pair).to_numpy(zero_copy_only=False)
        if (n != 2).any():
            i = int(np.argmax(n != 2))
            raise DataError(
                f"{path}: line {line_no[i]}: field '{name}' expected idx:val, "
                f"found {piece[i].as_py()!r}"
            )
        index = pc.list_element(pair, 0)
        value = pc.list_element(pair, 1)
        ok = pc.match_substring_regex(index, r"^\d+$").to_numpy(zero_copy_only=False)
        if not ok.all():
            i = int(np.argmax(~ok))
            raise DataError(
                f"{path}: line {line_no[i]}: field '{name}' expected an integer index, "
                f"found {index[i].as_py()!r}"
            )
        vals = _to_float(value, path, line_no, f"field '{name}' value").to_numpy(
            zero_copy_only=False
        )
        if (vals != 1.0).any():
            i = int(np.argmax(vals != 1.0))
            raise DataError(
                f"{path}: line {line_no[i]}: field '{name}' expected a one-hot value 1, "
                f"found {vals[i]:g}"
            )
        columns[name] = index
    return pa.table(columns)


# --------------------------------------------------------------------------- ML-1M


def _ml1m_label(rating: pa.Array, path: Path, line_no: np.ndarray) -> pa.Array:
    arr = _to_float(rating, path, line_no, "rating").to_numpy(zero_copy_only=False)
    bad = ~np.isin(arr, (1.0, 2.0, 3.0, 4.0, 5.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{path}: line {line_no[i]}: rating expected 1..5, found {arr[i]:g}")
    return pa.array((arr > ML1M_CLICK_THRESHOLD).astype(np.float64))


def read_ml1m(ratings: str | Path, users: str | Path, movies: str | Path | None = None) -> pa.Table:
    """Join raw ML-1M files into the paper's table: UserID, Gender, Age, Occupation, MovieID, label.

    ``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp`` and
    ``users.dat`` is ``UserID::Gender::Age::Occupation::Zip-code``. The label
    is 1 for a rating above :data:`ML1M_CLICK_THRESHOLD` (4 or 5 stars), else
    0; every rating is kept. ``movies.dat`` (latin-1, ``MovieID::Title::Genres``)
    is optional: the paper's fields take nothing from it, so it is only used,
    when given, to check that every rated movie exists. Rows keep the order
    of ``ratings.dat``.
    """
    rpath = _check_file(Path(ratings))
    upath = _check_file(Path(users))
    r_parts, r_lines = _split_fixed(
        _read_lines(rpath, encoding="latin-1"),
        "::",
        4,
        rpath,
        1,
        "UserID::MovieID::Rating::Timestamp",
    )
    u_parts, u_lines = _split_fixed(
        _read_lines(upath, encoding="latin-1"),
        "::",
        5,
        upath,
        1,
        "UserID::Gender::Age::Occupation::Zip-code",
    )
    user_ids = u_parts[0]
    if pc.count_distinct(user_ids).as_py() != len(user_ids):
        _, first = np.unique(user_ids.to_numpy(zero_copy_only=False), return_index=True)
        dup_mask = np.ones(len(user_ids), dtype=bool)
        dup_mask[first] = False
        i = int(np.argmax(dup_mask))
        raise DataError(
            f"{upath}: line {u_lines[i]}: UserID {user_ids[i].as_py()!r} appears twice "
            "(expected one line per user)"
        )
    pos = pc.index_in(r_parts[0], value_set=user_ids)
    missing = pc.is_null(pos).to_numpy(zero_copy_only=False)
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(
            f"{rpath}: line {r_lines[i]}: UserID {r_parts[0][i].as_py()!r} is not in {upath}"
        )
    if movies is not None:
        mpath = _check_file(Path(movies))
        m_parts, _ = _split_fixed(
            _read_lines(mpath, encoding="latin-1"),
            "::",
            3,
            mpath,
            1,
            "MovieID::Title::Genres",
        )
        unknown = pc.is_null(pc.index_in(r_parts[1], value_set=m_parts[0])).to_numpy(
            zero_copy_only=False
        )
        if unknown.any():
            i = int(np.argmax(unknown))
            raise DataError(
                f"{rpath}: line {r_lines[i]}: MovieID {r_parts[1][i].as_py()!r} is not in {mpath}"
            )
    take = pos.combine_chunks() if isinstance(pos, pa.ChunkedArray) else pos
    return pa.table(
        {
            "UserID": r_parts[0],
            "Gender": u_parts[1].take(take),
            "Age": u_parts[2].take(take),
            "Occupation": u_parts[3].take(take),
            "MovieID": r_parts[1],
            "label": _ml1m_label(r_parts[2], rpath, r_lines),
        }
    )


_ML1M_MERGED = {
    "user_id": "UserID",
    "gender": "Gender",
    "age": "Age",
    "occupation": "Occupation",
    "movie_id": "MovieID",
}


def read_ml1m_merged(path: str | Path) -> pa.Table:
    """Read an already joined ML-1M CSV into the same table :func:`read_ml1m` returns.

    Public ML-1M samples (DeepCTR's ``movielens_sample.txt``, torch-rechub's
    ``ml-1m_sample.csv``) ship the three files pre-joined as a CSV with the
    header ``user_id,movie_id,rating,timestamp,title,genres,gender,age,
    occupation,zip``; only the paper's fields and ``rating`` are used.
    """
    path = _check_file(Path(path))
    header = [h.strip() for h in _first_line(path).split(",")]
    needed = [*_ML1M_MERGED, "rating"]
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(
            f"{path}: line 1: header lacks {', '.join(missing)} (expected {','.join(needed)})"
        )
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                include_columns=needed,
                column_types={c: pa.string() for c in needed},
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: cannot read CSV ({_short(str(exc))})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: header but no rows (expected ML-1M rows)")
    line_no = np.arange(table.num_rows) + 2
    rating = table["rating"].combine_chunks()
    nulls = pc.is_null(rating).to_numpy(zero_copy_only=False)
    if nulls.any():
        i = int(np.argmax(nulls))
        raise DataError(f"{path}: line {line_no[i]}: rating expected 1..5, found an empty value")
    columns = {new: table[old].combine_chunks() for old, new in _ML1M_MERGED.items()}
    columns["label"] = _ml1m_label(rating, path, line_no)
    return pa.table(columns)


# --------------------------------------------------------------------------- Frappe


def read_frappe_raw(path: str | Path) -> pa.Table:
    """Read the original Frappe log (``frappe.csv``, tab-separated with a header).

    Returns the ten context fields under their BARS names (user, item,
    daytime, weekday, isweekend, homework, cost, weather, country, city) as
    strings, plus ``cnt`` (how often the app was used in that context) as
    float64. The log holds positives only; NFM/BARS made Frappe_x1 by adding
    two sampled negatives per log, so there is no label column here.
    """
    path = _check_file(Path(path))
    first = _first_line(path)
    delimiter = "\t" if "\t" in first else ","
    header = [h.strip() for h in first.split(delimiter)]
    needed = [*FRAPPE_FIELDS, "cnt"]
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(
            f"{path}: line 1: header lacks {', '.join(missing)} "
            f"(expected the Frappe columns {' '.join(needed)})"
        )
    types = {c: pa.string() for c in needed}
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=needed,
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        message = str(exc)
        row = first_ragged_row(path, pacsv.ParseOptions(delimiter=delimiter, quote_char=False))
        if row is not None:
            raise ragged_row_error(path, row) from None
        raise DataError(f"{path}: cannot read ({_short(message)})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: header but no rows (expected Frappe log rows)")
    line_no = np.arange(table.num_rows) + 2
    cnt = table["cnt"].combine_chunks()
    nulls = pc.is_null(cnt).to_numpy(zero_copy_only=False)
    if nulls.any():
        i = int(np.argmax(nulls))
        raise DataError(f"{path}: line {line_no[i]}: column 'cnt' expected a number, found nothing")
    columns = {c: table[c].combine_chunks() for c in FRAPPE_FIELDS}
    columns["cnt"] = _to_float(cnt, path, line_no, "column 'cnt'")
    return pa.table(columns)
