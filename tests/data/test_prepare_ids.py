"""The fast prepare gives the ids of the documented algorithm, whichever path builds the cache.

A straightforward per-row reference (count the train split's keys, sort by count then raw
bytes, keep counts >= min count, index from 2, OOV 1) is compared array for array with
the cache of a Criteo-format table that has ties, rare values, missing values, bytes that
sort differently from text, and values in valid/test that train never saw.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tf4ctr.data.readers as readers
import tf4ctr.data.split_encoding as split_encoding
import tf4ctr.data.store as store
from tf4ctr.data.formats import CRITEO_CATEGORICAL, CRITEO_NUMERIC
from tf4ctr.data.preprocess import Preprocessor
from tf4ctr.data.readers import iter_chunks
from tf4ctr.data.schema import DatasetConfig, load_dataset_config
from tf4ctr.data.store import prepare_dataset
from tf4ctr.errors import DataError

INTS, CATS = list(CRITEO_NUMERIC), list(CRITEO_CATEGORICAL)
FUXI, PAPER, DENSE = INTS[:6], INTS[6:11], INTS[11:]
# Tokens whose byte order differs from a naive text order ("10" < "9", "B" < "a", "é" last).
WORDS = ["a", "ab", "B", "10", "9", "é", "x y", "007", "7", "0"]


def _cell(rng: np.random.Generator, pool: list[str], p_missing: float) -> str:
    if rng.random() < p_missing:
        return ""
    # few frequent values, then many tied low counts and values seen once or twice
    r = min(int(rng.pareto(0.9)), len(pool) - 1)
    return pool[r]


def _number(rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.15:
        return ""
    if u < 0.18:
        return "nan"
    if u < 0.3:
        return str(int(rng.integers(-3, 3)))  # <= 2: kept as is, or bucket 1 (paper)
    if u < 0.35:
        return f"{rng.random() * 4:.2f}"  # 2.5 and the like
    return str(int(rng.lognormal(1.5, 2.0)))


def _write(path: Path, rows: int, seed: int, unseen: bool) -> None:
    rng = np.random.default_rng(seed)
    pools = []
    for j in range(len(CATS)):
        pool = [f"{w}{j % 3}" for w in WORDS] + [f"{k:08x}" for k in range(40 + 10 * j)]
        if unseen:
            pool = pool[:5] + [f"new{k}" for k in range(5)] + pool[5:]
        pools.append(pool)
    lines = []
    for _ in range(rows):
        cells = [str(int(rng.random() < 0.3))]
        cells += [_number(rng) for _ in INTS]
        cells += [_cell(rng, pools[j], 0.1 if j % 4 else 0.4) for j in range(len(CATS))]
        lines.append("\t".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(tmp_path: Path) -> DatasetConfig:
    for split, rows, seed in (("train", 3000, 1), ("valid", 500, 2), ("test", 400, 3)):
        _write(tmp_path / f"{split}.txt", rows, seed, unseen=split != "train")
    return load_dataset_config(
        {
            "ids": {
                "data_format": "criteo_tsv",
                "train_data": "train.txt",
                "valid_data": "valid.txt",
                "test_data": "test.txt",
                "min_categr_count": 3,
                "feature_cols": [
                    {"name": FUXI, "type": "categorical", "dtype": "float",
                     "preprocess": "criteo_log_bucket_fuxictr", "fill_na": 0},
                    {"name": PAPER, "type": "categorical", "dtype": "float",
                     "preprocess": "criteo_log_bucket"},
                    {"name": DENSE[0], "type": "numeric", "fill_na": 7},
                    {"name": DENSE[1], "type": "numeric"},
                    {"name": CATS[:20], "type": "categorical"},
                    {"name": CATS[20], "type": "categorical", "fill_na": "__na__"},
                    {"name": CATS[21:23], "type": "categorical", "min_categr_count": 1},
                    {"name": CATS[23:], "type": "categorical", "min_categr_count": 5},
                ],
                "label_col": {"name": "label"},
            }
        },
        base_dir=tmp_path,
    )  # fmt: skip


# ------------------------------------------------------------------ the reference


def _bucket(name: str, text: str) -> str | None:
    x = float(text) if text else math.nan
    if name in FUXI and math.isnan(x):
        x = 0.0  # fill_na 0, before bucketing
    if math.isnan(x):
        return None
    if x > 2:
        return str(math.floor(math.log(x) ** 2))
    return str(math.trunc(x) if name in FUXI else 1)


def _key(name: str, text: str) -> str | None:
    if name in FUXI or name in PAPER:
        return _bucket(name, text)
    if name == CATS[20]:
        return text or "__na__"
    return text or None


def _min_count(name: str) -> int:
    return 1 if name in CATS[21:23] else 5 if name in CATS[23:] else 3


def _reference(config: DatasetConfig) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Vocabularies and, per split, every field's expected array, computed row by row."""
    names = ["label", *INTS, *CATS]
    splits = {
        split: [dict(zip(names, line.split("\t"), strict=True)) for line in path.read_text(
            encoding="utf-8").splitlines()]
        for split, path in config.paths.items()
    }  # fmt: skip
    fields = [*FUXI, *PAPER, *CATS]
    vocabs: dict[str, list[str]] = {}
    for name in fields:
        counts = Counter(_key(name, row[name]) for row in splits["train"])
        counts.pop(None, None)
        ranked = sorted(counts.items(), key=lambda kc: (-kc[1], kc[0].encode("utf-8")))
        vocabs[name] = [k for k, c in ranked if c >= _min_count(name)]
    expected: dict[str, dict] = {}
    for split, rows in splits.items():
        out: dict[str, np.ndarray] = {}
        for name in fields:
            index = {k: i + 2 for i, k in enumerate(vocabs[name])}
            out[name] = np.array([index.get(_key(name, r[name]), 1) for r in rows], np.int32)
        for name, fill in ((DENSE[0], 7.0), (DENSE[1], 0.0)):
            values = [float(r[name]) if r[name] else math.nan for r in rows]
            out[name] = np.array([fill if math.isnan(v) else v for v in values], np.float32)
        out["label"] = np.array([float(r["label"]) for r in rows], np.float32)
        expected[split] = out
    return vocabs, expected


def _assert_matches(prepared: store.PreparedDataset, vocabs: dict, expected: dict) -> None:
    state = prepared.preprocessor.state_dict()["vocabularies"]
    assert state == vocabs
    schema = prepared.schema
    for split, want in expected.items():
        got = prepared.split(split)
        for j, field in enumerate(schema.categorical):
            np.testing.assert_array_equal(got.categorical[:, j], want[field.name], field.name)
        for j, field in enumerate(schema.numeric):
            np.testing.assert_array_equal(got.numeric[:, j], want[field.name], field.name)
        np.testing.assert_array_equal(got.label, want["label"])


# ------------------------------------------------------------------ tests


def test_the_data_has_what_the_test_is_about(tmp_path):
    config = _config(tmp_path)
    vocabs, expected = _reference(config)
    rows = [line.split("\t") for line in config.paths["train"].read_text().splitlines()]
    c2 = Counter(r[1 + len(INTS) + 1] for r in rows)  # C2
    kept = [n for k, n in c2.items() if k and n >= 3]
    assert len(kept) > len(set(kept))  # equal counts among kept values: the bytes decide
    assert any(0 < n < 3 for k, n in c2.items() if k)  # rare values -> OOV
    assert c2[""] > 0  # missing values -> OOV
    assert any(v.startswith("new") for v in (r.split("\t")[15] for r in
               config.paths["valid"].read_text().splitlines()))  # fmt: skip
    assert (expected["valid"]["C1"] == 1).mean() > (expected["train"]["C1"] == 1).mean()
    assert "__na__" in vocabs[CATS[20]] and "-1" in vocabs["I1"]
    assert vocabs["I7"] != vocabs["I1"]  # both bucketers, with and without fill_na


def test_one_read_of_train_gives_the_reference_ids(tmp_path, monkeypatch):
    config = _config(tmp_path)
    vocabs, expected = _reference(config)
    calls = []
    real = split_encoding._count_and_code_train
    monkeypatch.setattr(
        split_encoding, "_count_and_code_train", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    # many blocks, recoded some alone and some several at a time
    monkeypatch.setattr(split_encoding, "_RECODE_ROWS", 700)
    prepared = prepare_dataset(config, tmp_path / "cache", progress=False, block_bytes=16384)
    assert calls == [1]
    _assert_matches(prepared, vocabs, expected)
    assert not list((tmp_path / "cache").glob("*/.*distinct*"))


def test_two_reads_of_train_and_transform_give_the_reference_ids(tmp_path, monkeypatch):
    config = _config(tmp_path)
    vocabs, expected = _reference(config)
    monkeypatch.setattr(Preprocessor, "codes_locally", property(lambda self: False))
    monkeypatch.setattr(
        split_encoding, "_count_and_code_train", lambda *a, **k: pytest.fail("one-read path taken")
    )
    prepared = prepare_dataset(config, tmp_path / "cache", progress=False, block_bytes=16384)
    _assert_matches(prepared, vocabs, expected)
    # in memory, in one piece
    tables = {s: pa.concat_tables(t for t, _ in iter_chunks(p, config)) for s, p in
              config.paths.items()}  # fmt: skip
    prep = Preprocessor(config).fit(tables["train"])
    assert prep.state_dict()["vocabularies"] == vocabs
    for split, table in tables.items():
        enc = prep.transform(table)
        for j, field in enumerate(prep.schema.categorical):
            np.testing.assert_array_equal(enc.categorical[:, j], expected[split][field.name])


def test_hand_computed_ids_with_ties_rare_missing_and_unseen(tmp_path):
    def line(label: int, i1: str, c1: str) -> str:
        return "\t".join([str(label), i1, *[""] * 12, c1, *[""] * 25])

    train = [("9", "b"), ("10", "a"), ("", "b"), ("3", "a"), ("0", "c"), ("-1", ""), ("2.5", "B")]
    (tmp_path / "train.txt").write_text("\n".join(line(0, i, c) for i, c in train) + "\n")
    valid = [("9", "a"), ("", "zz"), ("100", "B"), ("-1", "c")]
    (tmp_path / "valid.txt").write_text("\n".join(line(1, i, c) for i, c in valid) + "\n")
    config = load_dataset_config(
        {
            "hand": {
                "data_format": "criteo_tsv",
                "train_data": "train.txt",
                "valid_data": "valid.txt",
                "test_data": "valid.txt",
                "min_categr_count": 1,
                "feature_cols": [
                    {"name": "I1", "type": "categorical", "dtype": "float",
                     "preprocess": "criteo_log_bucket_fuxictr", "fill_na": 0},
                    {"name": "C1", "type": "categorical"},
                ],
                "label_col": {"name": "label"},
            }
        },
        base_dir=tmp_path,
    )  # fmt: skip
    data = prepare_dataset(config, tmp_path / "cache", progress=False)
    # I1 buckets: 9 -> floor(ln 9 ^ 2) = 4, 10 -> 5, "" -> fill 0 -> 0, 3 -> 1, 0 -> 0,
    # -1 -> -1, 2.5 -> 0: "0" x3, then "-1", "1", "4", "5" once each, in byte order.
    # C1: "a" x2, "b" x2 (tie: "a" first), then "B" < "c" (bytes); "" is missing (OOV).
    assert data.preprocessor.state_dict()["vocabularies"] == {
        "I1": ["0", "-1", "1", "4", "5"],
        "C1": ["a", "b", "B", "c"],
    }
    assert data.train.categorical.tolist() == [
        [5, 3], [6, 2], [2, 3], [4, 2], [2, 5], [3, 1], [2, 4]
    ]  # fmt: skip
    # 100 -> floor(ln 100 ^ 2) = 21, unseen -> OOV; "zz" unseen -> OOV
    assert data.valid.categorical.tolist() == [[5, 2], [2, 1], [1, 4], [3, 5]]


def test_one_read_errors_name_file_and_line_and_leave_nothing(tmp_path):
    config = _config(tmp_path)
    path = config.paths["train"]
    lines = path.read_text().splitlines()
    bad = lines[:]
    bad[2500] = "7" + bad[2500][1:]
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(DataError, match=r"train.txt: line 2501: label 'label' must be 0 or 1"):
        prepare_dataset(config, tmp_path / "a", progress=False, block_bytes=16384)
    assert not any((tmp_path / "a").iterdir())
    bad = lines[:]
    cells = bad[2900].split("\t")
    cells[1] = "many"
    bad[2900] = "\t".join(cells)
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(DataError, match=r"train.txt: line 2901: column 'I1' expected a number"):
        prepare_dataset(config, tmp_path / "b", progress=False, block_bytes=16384)
    assert not any((tmp_path / "b").iterdir())


@pytest.mark.parametrize("fmt", ["criteo_tsv", "csv"])
def test_a_row_longer_than_the_parse_block_is_still_read(tmp_path, monkeypatch, fmt):
    config = _config(tmp_path)
    lines = config.paths["valid"].read_text().splitlines()
    cells = lines[300].split("\t")
    cells[1 + len(INTS) + 6] = "z" * 3000  # C7
    lines[300] = "\t".join(cells)
    if fmt == "csv":
        lines = [",".join(["label", *INTS, *CATS])] + [x.replace("\t", ",") for x in lines]
    path = tmp_path / ("long.txt" if fmt == "criteo_tsv" else "long.csv")
    config = replace(config, data_format=fmt)
    path.write_text("\n".join(lines) + "\n")
    whole = pa.concat_tables(t for t, _ in iter_chunks(path, config))
    assert whole.num_rows == 500 and whole["C7"][300].as_py() == "z" * 3000
    monkeypatch.setattr(readers, "_PARSE_BLOCK_BYTES", 1024)  # the long row straddles blocks
    chunks = list(iter_chunks(path, config, block_bytes=8192))
    assert len(chunks) > 3
    again = pa.concat_tables(t for t, _ in chunks)
    assert again.schema == whole.schema
    for name in whole.column_names:  # (Table.equals would call NaN unequal to itself)
        np.testing.assert_array_equal(
            again[name].to_numpy(zero_copy_only=False), whole[name].to_numpy(zero_copy_only=False)
        )
    first = 1 if fmt == "criteo_tsv" else 2
    sizes = [t.num_rows for t, _ in chunks]
    assert [line for _, line in chunks] == list(first + np.cumsum([0, *sizes[:-1]]))


def test_read_ahead_hands_over_items_errors_and_stops_early():
    assert list(split_encoding._read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]

    def failing():
        yield 1
        raise DataError("bad line 2")

    got = []
    with pytest.raises(DataError, match="bad line 2"):
        for item in split_encoding._read_ahead(failing()):
            got.append(item)
    assert got == [1]

    closed = []

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    ahead = split_encoding._read_ahead(endless())
    assert next(ahead) == 0
    ahead.close()
    assert closed == [True]
