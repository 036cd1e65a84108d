"""Streaming preprocessing: reading in blocks gives the same cache as reading whole files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tf4ctr.data import vocabulary
from tf4ctr.data.preprocess import Preprocessor, distinct_values
from tf4ctr.data.readers import iter_chunks
from tf4ctr.data.schema import load_dataset_config
from tf4ctr.data.store import prepare_dataset
from tf4ctr.errors import DataError


def _write_split(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.5, rows) % 300
    items = rng.integers(0, 40, rows)
    price = np.round(rng.random(rows) * 10, 3)
    label = (rng.random(rows) < 0.3).astype(int)
    lines = ["label,user,item,price"]
    lines += [f"{y},u{u},i{i},{p}" for y, u, i, p in zip(label, users, items, price, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _config(tmp_path: Path, rows: tuple[int, int, int] = (3000, 800, 700)):
    for split, n, seed in zip(("train", "valid", "test"), rows, (1, 2, 3), strict=True):
        _write_split(tmp_path / f"{split}.csv", n, seed)
    return load_dataset_config(
        {
            "name": "stream",
            "train_data": "train.csv",
            "valid_data": "valid.csv",
            "test_data": "test.csv",
            "min_categr_count": 2,
            "feature_cols": [
                {"name": ["user", "item"], "active": True, "type": "categorical", "dtype": "str"},
                {"name": "price", "active": True, "type": "numeric", "dtype": "float"},
            ],
            "label_col": {"name": "label", "dtype": "float"},
            "group_col": "user",
        },
        base_dir=tmp_path,
    )


def test_chunks_cover_the_file_with_the_right_line_numbers(tmp_path):
    config = _config(tmp_path)
    chunks = list(iter_chunks(config.paths["train"], config, block_bytes=4096))
    assert len(chunks) > 5
    lines = [first for _, first in chunks]
    sizes = [t.num_rows for t, _ in chunks]
    assert lines[0] == 2 and all(
        b - a == n for a, b, n in zip(lines, lines[1:], sizes, strict=False)
    )
    assert sum(sizes) == 3000


def test_fit_in_pieces_equals_fit_on_the_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(vocabulary.ValueCounter, "merge_rows", 50)  # force many merges
    config = _config(tmp_path)
    whole = Preprocessor(config).fit(
        pa.concat_tables(t for t, _ in iter_chunks(config.paths["train"], config))
    )
    pieces = Preprocessor(config).fit_chunks(
        t for t, _ in iter_chunks(config.paths["train"], config, block_bytes=2048)
    )
    assert pieces.state_dict() == whole.state_dict()


def test_cache_built_in_small_blocks_is_identical(tmp_path):
    config = _config(tmp_path)
    big = prepare_dataset(config, tmp_path / "a", progress=False)
    small = prepare_dataset(config, tmp_path / "b", progress=False, block_bytes=2048)
    for split in ("train", "valid", "test"):
        x, y = big.split(split), small.split(split)
        np.testing.assert_array_equal(x.categorical, y.categorical)
        np.testing.assert_array_equal(x.numeric, y.numeric)
        np.testing.assert_array_equal(x.label, y.label)
        np.testing.assert_array_equal(x.group, y.group)


def test_group_ids_agree_across_blocks(tmp_path):
    config = _config(tmp_path)
    data = prepare_dataset(config, tmp_path / "c", progress=False, block_bytes=2048)
    raw = pa.concat_tables(t for t, _ in iter_chunks(config.paths["valid"], config))
    users = np.asarray(raw["user"].to_pylist())
    groups = data.valid.group
    for u in np.unique(users):
        assert len(np.unique(groups[users == u])) == 1  # one id per user
    assert len(np.unique(groups)) == len(np.unique(users))  # different users, different ids


def test_load_false_only_builds(tmp_path):
    config = _config(tmp_path)
    first = prepare_dataset(config, tmp_path / "d", progress=False, load=False)
    (built,) = (tmp_path / "d").iterdir()
    assert first == built  # the cache's folder, so a caller need not hash the files again
    assert np.load(built / "train" / "__label__.npy").shape == (3000,)
    # a second call finds it and still loads nothing
    assert prepare_dataset(config, tmp_path / "d", progress=False, load=False) == built


def test_bad_label_in_a_later_block_names_its_line(tmp_path):
    config = _config(tmp_path)
    path = config.paths["train"]
    lines = path.read_text().splitlines()
    lines[2500] = "7" + lines[2500][1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train.csv: line 2501: label 'label' must be 0 or 1"):
        prepare_dataset(config, tmp_path / "e", progress=False, block_bytes=2048)
    assert not any((tmp_path / "e").iterdir())


def test_criteo_tsv_reads_headerless_tab_separated_rows(tmp_path):
    from tf4ctr.data.formats import CRITEO_CATEGORICAL, CRITEO_NUMERIC, criteo_feature_cols

    rows = []
    for i in range(50):
        ints = [str(i % 7) if i % 5 else "" for _ in CRITEO_NUMERIC]
        cats = [f"{i % 3:08x}" if i % 4 else "" for _ in CRITEO_CATEGORICAL]
        rows.append("\t".join([str(i % 2), *ints, *cats]))
    (tmp_path / "train.txt").write_text("\n".join(rows) + "\n")
    bad = rows[:]
    bad[30] = bad[30].replace("\t", "\tx", 1)  # I1 = "x..." is not a number
    (tmp_path / "bad.txt").write_text("\n".join(bad) + "\n")
    raw = {
        "name": "tsv",
        "data_format": "criteo_tsv",
        "train_data": "train.txt",
        "valid_data": "bad.txt",
        "test_data": "train.txt",
        "feature_cols": criteo_feature_cols("criteo_log_bucket"),
        "label_col": {"name": "label", "dtype": "float"},
    }
    config = load_dataset_config(raw, base_dir=tmp_path)
    table = pa.concat_tables(t for t, _ in iter_chunks(config.paths["train"], config))
    assert table.num_rows == 50 and table["C1"].null_count > 0
    with pytest.raises(DataError, match=r"bad.txt: line 31: column 'I1' expected a number"):
        list(iter_chunks(config.paths["valid"], config))


def test_distinct_values_keeps_first_appearance_and_drops_nulls():
    parts = [pa.array(["b", None, "a"]), pa.array(["a", "c"]), pa.array(["b"])]
    assert distinct_values(parts).to_pylist() == ["b", "a", "c"]


def test_reader_reports_its_position_for_progress_bars(tmp_path):
    """Bars of a first read have a total in bytes: the reader's position reaches the file's
    size; parquet and compressed files report nothing (their bars count rows instead)."""
    import gzip

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from tf4ctr.data.readers import reports_bytes

    config = _config(tmp_path, rows=(20_000, 800, 700))
    path = tmp_path / "train.csv"
    seen: list[int] = []
    rows = sum(
        t.num_rows for t, _ in iter_chunks(path, config, block_bytes=1 << 16, on_bytes=seen.append)
    )
    assert rows == 20_000 and len(seen) > 1
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size
    assert reports_bytes(path, config)

    pq.write_table(pacsv.read_csv(path), tmp_path / "train.parquet")
    (tmp_path / "train.csv.gz").write_bytes(gzip.compress(path.read_bytes()))
    for other in (tmp_path / "train.parquet", tmp_path / "train.csv.gz"):
        calls: list[int] = []
        assert sum(t.num_rows for t, _ in iter_chunks(other, config, on_bytes=calls.append)) == rows
        assert calls == [] and not reports_bytes(other, config)


def test_prepare_and_predict_bars_have_totals(tmp_path, monkeypatch):
    """On a terminal, the first read of a split shows bytes out of the file's size."""
    import tqdm as tqdm_module

    from tf4ctr.data import read_progress

    totals: list[tuple[str, object, object]] = []

    class Recording(tqdm_module.tqdm):
        def close(self) -> None:
            totals.append((str(self.desc), self.total, self.n))
            super().close()

    monkeypatch.setattr(read_progress, "tqdm", Recording)  # every read's bar is made there
    monkeypatch.setattr(read_progress, "show_bars", lambda requested: True)
    config = _config(tmp_path)
    prepare_dataset(config, tmp_path / "d", progress=True, load=False)
    size = (tmp_path / "train.csv").stat().st_size
    assert ("stream: count train", size, size) in totals
    # later passes know the rows
    assert any(
        desc.startswith("stream: encode valid") and total == 800 for desc, total, _ in totals
    )
