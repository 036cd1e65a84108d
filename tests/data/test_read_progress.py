"""The one place a read's progress bar is decided: bytes of a plain CSV, else rows."""

from __future__ import annotations

import dataclasses

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tf4ctr.data import load_dataset_config
from tf4ctr.data.read_progress import ReadBar, parquet_rows
from tf4ctr.data.readers import iter_chunks


def _read(bar: ReadBar, path, config) -> int:
    rows = 0
    for table, _ in iter_chunks(path, config, block_bytes=40, on_bytes=bar.on_bytes):
        bar.rows_read(table.num_rows)
        rows += table.num_rows
    return rows


def test_a_plain_csv_is_counted_in_bytes_to_its_size(small_dataset):
    config = load_dataset_config(small_dataset())
    path = config.paths["train"]
    with ReadBar(path, config, desc="t", progress=False) as bar:
        assert bar.in_bytes and bar.bar.total == path.stat().st_size
        _read(bar, path, config)
        rows = sum(1 for _ in path.open()) - 1  # less the header
        assert bar.position == path.stat().st_size and bar.rows == rows


def test_a_later_pass_counts_rows_to_the_known_total(small_dataset):
    config = load_dataset_config(small_dataset())
    path = config.paths["train"]
    with ReadBar(path, config, desc="t", progress=False, in_bytes=False, rows=7) as bar:
        assert not bar.in_bytes and bar.on_bytes is None and bar.bar.total == 7
        rows = _read(bar, path, config)
        assert bar.rows == rows > 0


def test_parquet_is_counted_in_rows_with_its_footer_as_total(small_dataset, tmp_path):
    config = load_dataset_config(small_dataset())
    table = pacsv.read_csv(config.paths["train"])
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    config = dataclasses.replace(config, data_format="parquet")
    assert parquet_rows(path) == table.num_rows
    with ReadBar(path, config, desc="t", progress=False) as bar:
        assert not bar.in_bytes and bar.bar.total == table.num_rows
        assert _read(bar, path, config) == bar.rows == table.num_rows


def test_a_file_that_is_not_parquet_has_no_row_total(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    assert parquet_rows(path) is None
    assert parquet_rows(tmp_path / "missing.parquet") is None
