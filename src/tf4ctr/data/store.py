"""Encode a dataset once and keep the arrays on disk, keyed by everything they depend on.

The cache directory is ``cache_root/<name>-<key[:16]>``, where the key hashes
the canonical config, the sha256 of each split file and :data:`FORMAT_VERSION`.
A changed config or a changed file therefore lands in a different directory
and is rebuilt: a cache can be missing but never stale. Hashing the files on
every call costs milliseconds for Frappe-sized data and is the price of that
guarantee.

A build writes into a hidden temporary sibling and renames it into place at
the end, so a half-built cache is never visible, a failed build leaves
nothing behind, and two processes racing to build the same key both end up
reading the one that won the rename.

Old directories of the same dataset name are NOT deleted: runs with
different settings (say a min_categr_count sweep) share one cache root and
may be reading their own directory at that very moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tf4ctr.data.preprocess import EncodedSplit, FeatureSchema, Preprocessor
from tf4ctr.data.readers import read_table, sha256_file
from tf4ctr.data.schema import SPLITS, DatasetConfig
from tf4ctr.errors import UserError

__all__ = ["FORMAT_VERSION", "PreparedDataset", "cache_dir_for", "cache_key", "prepare_dataset"]

# Bump whenever the bytes written for the same inputs would change (index
# convention, bucketers, file layout), so old caches are not reused.
FORMAT_VERSION = 1

_META = "meta.json"
_PREPROCESSOR = "preprocessor.json"
_LABEL = "__label__"
_GROUP = "__group__"
# Temporary build directories older than this are leftovers of killed builds.
_ABANDONED_AFTER_S = 24 * 3600


@dataclass
class PreparedDataset:
    """All three splits encoded with one train-fitted preprocessor."""

    config: DatasetConfig
    preprocessor: Preprocessor
    train: EncodedSplit
    valid: EncodedSplit
    test: EncodedSplit
    cache_dir: Path

    @property
    def schema(self) -> FeatureSchema:
        return self.preprocessor.schema

    def split(self, name: str) -> EncodedSplit:
        """The split called ``name`` ("train", "valid" or "test")."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r} (expected one of: {', '.join(SPLITS)})")
        return getattr(self, name)


def _source_hashes(config: DatasetConfig) -> dict[str, str]:
    return {split: sha256_file(path) for split, path in config.paths.items()}


def _key_from(config: DatasetConfig, hashes: dict[str, str]) -> str:
    payload = {"format_version": FORMAT_VERSION, "config": config.to_dict(), "sources": hashes}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(config: DatasetConfig) -> str:
    """Hex sha256 over the canonical config, each split file's sha256 and FORMAT_VERSION."""
    return _key_from(config, _source_hashes(config))


def cache_dir_for(config: DatasetConfig, cache_root: Path, key: str | None = None) -> Path:
    """Where the cache for this config (and these file contents) lives."""
    key = cache_key(config) if key is None else key
    return Path(cache_root) / f"{config.name}-{key[:16]}"


def prepare_dataset(
    config: DatasetConfig, cache_root: Path, *, progress: bool = True
) -> PreparedDataset:
    """Return the encoded dataset, building the cache on the first call and reading it after.

    Raises DataError/ConfigError for bad inputs; a failed build leaves nothing
    under ``cache_root``. Prints nothing but the optional tqdm bar.
    """
    cache_root = Path(cache_root)
    hashes = _source_hashes(config)
    key = _key_from(config, hashes)
    target = cache_dir_for(config, cache_root, key)
    if (target / _META).is_file():
        loaded = _try_load(target, config, key)
        if loaded is not None:
            return loaded
        # Unreadable or foreign contents under our key's name: rebuild it.
        shutil.rmtree(target, ignore_errors=True)
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(cache_root, config.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{config.name}-", dir=cache_root))
    try:
        prepared = _build(config, key, hashes, tmp, target, progress)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process won the race; its cache is as good as ours.
            loaded = _try_load(target, config, key)
            if loaded is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return loaded
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return prepared


def _remove_abandoned_builds(cache_root: Path, name: str) -> None:
    # A killed build cannot clean up after itself. Anything this old is not
    # a build still in progress (Frappe takes under a second, Criteo minutes).
    cutoff = time.time() - _ABANDONED_AFTER_S
    for path in cache_root.glob(f".tmp-{name}-*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)


def _build(
    config: DatasetConfig,
    key: str,
    hashes: dict[str, str],
    tmp: Path,
    target: Path,
    progress: bool,
) -> PreparedDataset:
    preprocessor = Preprocessor(config)
    splits: dict[str, EncodedSplit] = {}
    with tqdm(
        total=2 * len(SPLITS), desc=f"prepare {config.name}", disable=not progress, leave=False
    ) as bar:
        for split, path in config.paths.items():
            bar.set_postfix_str(f"read {split}")
            table = read_table(path, config)
            bar.update(1)
            bar.set_postfix_str(f"encode {split}")
            if split == "train":
                preprocessor.fit(table, source=path)
            splits[split] = preprocessor.transform(table, source=path)
            del table
            _save_split(tmp / split, splits[split], preprocessor)
            bar.update(1)
    _write_json(tmp / _PREPROCESSOR, preprocessor.state_dict())
    meta = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "name": config.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "sources": {
            split: {"path": str(path), "sha256": hashes[split], "bytes": path.stat().st_size}
            for split, path in config.paths.items()
        },
        "rows": {split: len(s) for split, s in splits.items()},
        "has_group": config.group_col is not None,
        "schema": preprocessor.schema.to_dict(),
    }
    # meta.json last: its presence is what marks a directory as complete.
    _write_json(tmp / _META, meta)
    return PreparedDataset(
        config=config,
        preprocessor=preprocessor,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        cache_dir=target,
    )


def _save_split(directory: Path, split: EncodedSplit, preprocessor: Preprocessor) -> None:
    directory.mkdir(parents=True)
    schema = preprocessor.schema
    for j, field in enumerate(schema.categorical):
        np.save(directory / f"{field.name}.npy", np.ascontiguousarray(split.categorical[:, j]))
    for j, field in enumerate(schema.numeric):
        np.save(directory / f"{field.name}.npy", np.ascontiguousarray(split.numeric[:, j]))
    np.save(directory / f"{_LABEL}.npy", split.label)
    if split.group is not None:
        np.save(directory / f"{_GROUP}.npy", split.group)


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")


def _try_load(directory: Path, config: DatasetConfig, key: str) -> PreparedDataset | None:
    """Read a finished cache; None when it is not one we can trust."""
    try:
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if meta.get("key") != key or meta.get("format_version") != FORMAT_VERSION:
            return None
        state = json.loads((directory / _PREPROCESSOR).read_text(encoding="utf-8"))
        preprocessor = Preprocessor.from_state_dict(state)
        schema = preprocessor.schema
        splits = {
            split: _load_split(
                directory / split, schema, int(meta["rows"][split]), meta["has_group"]
            )
            for split in SPLITS
        }
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None
    # The cache's own copy of the config lacks `source`; keep the caller's.
    preprocessor.config = config
    return PreparedDataset(
        config=config,
        preprocessor=preprocessor,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        cache_dir=directory,
    )


def _load_split(directory: Path, schema: FeatureSchema, rows: int, has_group: bool) -> EncodedSplit:
    def load(name: str, dtype: type) -> np.ndarray:
        arr = np.load(directory / f"{name}.npy", allow_pickle=False)
        if arr.shape != (rows,) or arr.dtype != dtype:
            raise ValueError(f"{directory / name}.npy: shape {arr.shape} dtype {arr.dtype}")
        return arr

    def stack(fields: tuple, dtype: type) -> np.ndarray:
        if not fields:
            return np.empty((rows, 0), dtype=dtype)
        return np.stack([load(f.name, dtype) for f in fields], axis=1)

    return EncodedSplit(
        categorical=stack(schema.categorical, np.int32),
        numeric=stack(schema.numeric, np.float32),
        label=load(_LABEL, np.float32),
        group=load(_GROUP, np.int64) if has_group else None,
    )
