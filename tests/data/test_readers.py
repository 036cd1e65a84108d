"""read_table: column types, LF/CRLF/parquet equivalence, and each DataError with file and line."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tf4ctr.data.readers import read_table, sha256_file
from tf4ctr.data.schema import DatasetConfig, load_dataset_config
from tf4ctr.errors import DataError


@pytest.fixture
def config(small_dataset: Callable[..., Path]) -> DatasetConfig:
    # "auto": the format follows each file's extension.
    return load_dataset_config(small_dataset(data_format="auto"))


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


CSV = "label,user,item,price,extra\n1,007,i1,1.5,x\n0,7,i2,,y\n1,,i1,2.0,z\n"


def test_types_and_only_needed_columns(tmp_path: Path, config: DatasetConfig) -> None:
    table = read_table(write(tmp_path / "t.csv", CSV), config)
    assert table.column_names == ["label", "user", "item", "price"]
    assert table.schema.field("label").type == pa.float64()
    assert table.schema.field("user").type == pa.string()
    assert table.schema.field("price").type == pa.float64()
    # Keyed by raw text: "007" and "7" stay apart; empty cells are missing.
    assert table["user"].to_pylist() == ["007", "7", None]
    assert table["price"].to_pylist() == [1.5, None, 2.0]


def test_lf_and_crlf_read_identically(tmp_path: Path, config: DatasetConfig) -> None:
    lf = read_table(write(tmp_path / "lf.csv", CSV), config)
    crlf = read_table(write(tmp_path / "crlf.csv", CSV, "\r\n"), config)
    assert lf.equals(crlf)


def test_parquet_reads_like_csv(tmp_path: Path, config: DatasetConfig) -> None:
    from_csv = read_table(write(tmp_path / "t.csv", CSV), config)
    pq.write_table(from_csv, tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet", config).equals(from_csv)
    # Integer ids stored as integers become the same text keys a CSV gives.
    ints = pa.table(
        {
            "label": pa.array([1, 0], pa.int8()),
            "user": [5040, 7],
            "item": ["a", "b"],
            "price": [1, 2],
        }
    )
    pq.write_table(ints, tmp_path / "ints.parquet")
    got = read_table(tmp_path / "ints.parquet", config)
    assert got["user"].to_pylist() == ["5040", "7"]
    assert got["price"].type == pa.float64() and got["label"].type == pa.float64()


def test_sha256_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", CSV * 1000)
    assert sha256_file(path, chunk_size=4096) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="nope.csv: file not found"):
        sha256_file(tmp_path / "nope.csv")


def test_missing_label_allowed_only_when_asked(tmp_path: Path, config: DatasetConfig) -> None:
    path = write(tmp_path / "t.csv", "user,item,price\nu1,i1,1\n")
    assert read_table(path, config, require_label=False).column_names == ["user", "item", "price"]
    # A group column that is not a feature is optional for prediction input too.
    cfg = replace(config, group_col="session")
    assert read_table(path, cfg, require_label=False).column_names == ["user", "item", "price"]
    with pytest.raises(DataError, match="missing column 'session'"):
        read_table(write(tmp_path / "l.csv", "label,user,item,price\n1,u1,i1,1\n"), cfg)
    with pytest.raises(DataError, match="missing column 'label'"):
        read_table(path, config)


def _raises(path: Path, config: DatasetConfig, expected: str) -> None:
    with pytest.raises(DataError) as info:
        read_table(path, config)
    message = str(info.value)
    assert message == f"{path}: {expected}"


def test_missing_file(tmp_path: Path, config: DatasetConfig) -> None:
    _raises(tmp_path / "nope.csv", config, "file not found")


def test_empty_file(tmp_path: Path, config: DatasetConfig) -> None:
    _raises(
        write(tmp_path / "e.csv", ""),
        config,
        "file is empty (expected a header and at least one row)",
    )


def test_header_only(tmp_path: Path, config: DatasetConfig) -> None:
    _raises(
        write(tmp_path / "h.csv", "label,user,item,price\n"),
        config,
        "file has a header but no rows (expected a header and at least one row)",
    )


def test_missing_column(tmp_path: Path, config: DatasetConfig) -> None:
    _raises(
        write(tmp_path / "m.csv", "label,user,price\n1,u,2\n"),
        config,
        "missing column 'item' (header has: label, user, price)",
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_ragged_row_line_number(tmp_path: Path, config: DatasetConfig, newline: str) -> None:
    text = "label,user,item,price\n1,u,i,1\n0,u,i,2\n0,u,i,3,oops\n1,u,i,4\n"
    _raises(write(tmp_path / "r.csv", text, newline), config, "line 4: expected 4 fields, found 5")


def test_ragged_row_in_a_large_file(tmp_path: Path, config: DatasetConfig) -> None:
    # Several MB, so pyarrow parses blocks on many threads; the reported line must
    # still be the first bad one, counted from the header.
    good = "0,u12345,i67890,1.25\n"
    text = "label,user,item,price\n" + good * 150_000 + "1,u,i\n" + good * 100_000 + "1,u,i,1,2\n"
    _raises(write(tmp_path / "big.csv", text), config, "line 150002: expected 4 fields, found 3")


@pytest.mark.parametrize(
    ("value", "shown"), [("2", "2"), ("2.5", "2.5"), ("-1", "-1"), ("", "an empty value")]
)
def test_label_not_binary_line_number(
    tmp_path: Path, config: DatasetConfig, value: str, shown: str
) -> None:
    text = f"label,user,item,price\n1,u,i,1\n0,u,i,2\n1.0,u,i,3\n{value},u,i,4\n7,u,i,5\n"
    _raises(
        write(tmp_path / "l.csv", text, "\r\n"),
        config,
        f"line 5: label 'label' must be 0 or 1, found {shown}",
    )


def test_non_number_in_numeric_column(tmp_path: Path, config: DatasetConfig) -> None:
    text = "label,user,item,price\n1,u,i,1\n0,u,i,1e3\n1,u,i,abc\n"
    _raises(
        write(tmp_path / "n.csv", text),
        config,
        "line 4: column 'price' expected a number, found 'abc'",
    )


def test_parquet_label_error_counts_rows(tmp_path: Path, config: DatasetConfig) -> None:
    table = pa.table(
        {"label": [0.0, 3.0], "user": ["a", "b"], "item": ["x", "y"], "price": [1.0, 2.0]}
    )
    pq.write_table(table, tmp_path / "p.parquet")
    _raises(tmp_path / "p.parquet", config, "row 2: label 'label' must be 0 or 1, found 3")
