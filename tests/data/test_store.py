"""Encoded cache: built once, reused, rebuilt on any config or file change, nothing left by a failure."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import tf4ctr.data.store as store
from tf4ctr.data.schema import load_dataset_config
from tf4ctr.data.store import cache_key, prepare_dataset
from tf4ctr.errors import DataError


def _same(a: store.PreparedDataset, b: store.PreparedDataset) -> None:
    for split in ("train", "valid", "test"):
        x, y = a.split(split), b.split(split)
        np.testing.assert_array_equal(x.categorical, y.categorical)
        np.testing.assert_array_equal(x.numeric, y.numeric)
        np.testing.assert_array_equal(x.label, y.label)
        np.testing.assert_array_equal(x.group, y.group)
        assert y.categorical.dtype == np.int32 and y.categorical.flags["C_CONTIGUOUS"]


def test_build_layout_then_reuse(
    small_dataset: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_dataset_config(small_dataset())
    root = tmp_path / "cache"
    first = prepare_dataset(cfg, root, progress=False)
    key = cache_key(cfg)
    assert first.cache_dir == root / f"small-{key[:16]}"
    assert [p.name for p in root.iterdir()] == [first.cache_dir.name]
    meta = json.loads((first.cache_dir / "meta.json").read_text())
    assert meta["key"] == key and meta["rows"] == {"train": 6, "valid": 3, "test": 2}
    for name in ("user", "item", "price", "__label__", "__group__"):
        assert (first.cache_dir / "train" / f"{name}.npy").is_file()
    assert (first.cache_dir / "preprocessor.json").is_file()
    # u1 x3, u2 x2, u3 x1 -> 2, 3, 4; unseen u4 -> OOV.
    assert first.train.categorical[:, 0].tolist() == [2, 2, 3, 4, 3, 2]
    assert first.valid.categorical[:, 0].tolist() == [2, 1, 3]
    assert first.schema.vocab_sizes == [5, 5]

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("cache was rebuilt")

    monkeypatch.setattr(store, "_build", no_build)
    second = prepare_dataset(cfg, root, progress=False)
    assert second.cache_dir == first.cache_dir
    assert second.schema == first.schema and second.config == cfg
    _same(first, second)


def test_config_change_rebuilds(small_dataset: Callable[..., Path], tmp_path: Path) -> None:
    cfg = load_dataset_config(small_dataset())
    root = tmp_path / "cache"
    a = prepare_dataset(cfg, root, progress=False)
    b = prepare_dataset(replace(cfg, min_categr_count=2), root, progress=False)
    assert a.cache_dir != b.cache_dir
    assert b.train.categorical[:, 0].tolist() == [2, 2, 3, 1, 3, 2]
    assert sorted(p.name for p in root.iterdir()) == sorted([a.cache_dir.name, b.cache_dir.name])


def test_source_content_change_rebuilds(small_dataset: Callable[..., Path], tmp_path: Path) -> None:
    cfg = load_dataset_config(small_dataset())
    root = tmp_path / "cache"
    a = prepare_dataset(cfg, root, progress=False)
    key_before = cache_key(cfg)
    text = cfg.test_data.read_text()
    cfg.test_data.write_text(text.replace("0,u3,i1,1.0", "1,u3,i1,1.0"))
    assert cache_key(cfg) != key_before
    b = prepare_dataset(cfg, root, progress=False)
    assert b.cache_dir != a.cache_dir
    assert a.test.label.tolist() == [0.0, 1.0] and b.test.label.tolist() == [1.0, 1.0]


def test_failed_build_leaves_nothing(small_dataset: Callable[..., Path], tmp_path: Path) -> None:
    bad_test = "label,user,item,price\n0,u3,i1,1.0\n1,u2,i3,\n2,u1,i1,1.0\n"
    cfg = load_dataset_config(small_dataset(test=bad_test))
    root = tmp_path / "cache"
    with pytest.raises(
        DataError, match=r"test\.csv: line 4: label 'label' must be 0 or 1, found 2"
    ):
        prepare_dataset(cfg, root, progress=False)
    assert list(root.iterdir()) == []


def test_missing_source_file(small_dataset: Callable[..., Path], tmp_path: Path) -> None:
    cfg = load_dataset_config(small_dataset())
    cfg.valid_data.unlink()
    with pytest.raises(DataError, match=r"valid\.csv: file not found"):
        prepare_dataset(cfg, tmp_path / "cache", progress=False)


def test_damaged_cache_is_rebuilt(small_dataset: Callable[..., Path], tmp_path: Path) -> None:
    cfg = load_dataset_config(small_dataset())
    root = tmp_path / "cache"
    a = prepare_dataset(cfg, root, progress=False)
    (a.cache_dir / "valid" / "item.npy").unlink()
    b = prepare_dataset(cfg, root, progress=False)
    assert b.cache_dir == a.cache_dir and (b.cache_dir / "valid" / "item.npy").is_file()
    _same(a, b)


def test_abandoned_temporary_build_is_removed(
    small_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = load_dataset_config(small_dataset())
    root = tmp_path / "cache"
    old, recent = root / ".tmp-small-killed", root / ".tmp-small-running"
    old.mkdir(parents=True)
    recent.mkdir()
    os.utime(old, (0, 0))
    built = prepare_dataset(cfg, root, progress=False)
    assert sorted(p.name for p in root.iterdir()) == sorted([recent.name, built.cache_dir.name])
