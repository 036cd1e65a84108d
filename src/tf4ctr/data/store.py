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
from typing import Any, Literal, overload

from tf4ctr.data.cache_files import load_split
from tf4ctr.data.encoded import EncodedSplit, FeatureSchema
from tf4ctr.data.mapped import MappedSplit
from tf4ctr.data.preprocess import Preprocessor
from tf4ctr.data.readers import sha256_file
from tf4ctr.data.schema import SPLITS, DatasetConfig
from tf4ctr.data.split_encoding import encode_splits
from tf4ctr.errors import UserError
from tf4ctr.fileio import make_dir, try_lock

__all__ = ["FORMAT_VERSION", "PreparedDataset", "cache_dir_for", "cache_key", "prepare_dataset"]

# Bump whenever the bytes written for the same inputs would change (index
# convention, bucketers, file layout), so old caches are not reused.
FORMAT_VERSION = 2

_META = "meta.json"
_PREPROCESSOR = "preprocessor.json"
# Build folders without a lock file (older tf4ctr) older than this are leftovers.
_ABANDONED_AFTER_S = 24 * 3600
_BUILD_LOCK = ".build.lock"
# What a finished (or damaged) cache folder may hold, and so what tf4ctr may remove.
_CACHE_ENTRIES = frozenset({_META, _PREPROCESSOR, *SPLITS, _BUILD_LOCK})


@dataclass
class PreparedDataset:
    """All three splits encoded with one train-fitted preprocessor."""

    config: DatasetConfig
    preprocessor: Preprocessor
    train: EncodedSplit | MappedSplit
    valid: EncodedSplit | MappedSplit
    test: EncodedSplit | MappedSplit
    cache_dir: Path

    @property
    def schema(self) -> FeatureSchema:
        return self.preprocessor.schema

    def split(self, name: str) -> EncodedSplit | MappedSplit:
        """The split called ``name`` ("train", "valid" or "test")."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r} (expected one of: {', '.join(SPLITS)})")
        return getattr(self, name)


def _source_hashes(config: DatasetConfig) -> dict[str, str]:
    return {split: sha256_file(path) for split, path in config.paths.items()}


def _key_from(
    config: DatasetConfig,
    hashes: dict[str, str],
    base: Preprocessor | None = None,
    refresh_scalers: bool = False,
) -> str:
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "sources": hashes,
    }
    if base is not None:  # absent otherwise, so every existing cache keeps its key
        state = json.dumps(base.state_dict(), sort_keys=True, separators=(",", ":"))
        payload["base"] = hashlib.sha256(state.encode("utf-8")).hexdigest()
        if refresh_scalers:  # absent when kept, so the caches of earlier warm starts keep theirs
            payload["refresh_scalers"] = True
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(config: DatasetConfig) -> str:
    """Hex sha256 over the canonical config, each split file's sha256 and FORMAT_VERSION."""
    return _key_from(config, _source_hashes(config))


def cache_dir_for(config: DatasetConfig, cache_root: Path, key: str | None = None) -> Path:
    """Where the cache for this config (and these file contents) lives."""
    key = cache_key(config) if key is None else key
    return Path(cache_root) / f"{config.name}-{key[:16]}"


@overload
def prepare_dataset(
    config: DatasetConfig,
    cache_root: Path,
    *,
    progress: bool = ...,
    load: Literal[True] = ...,
    block_bytes: int = ...,
    mapped: bool = ...,
    base: Preprocessor | None = ...,
    refresh_scalers: bool = ...,
) -> PreparedDataset: ...


@overload
def prepare_dataset(
    config: DatasetConfig,
    cache_root: Path,
    *,
    progress: bool = ...,
    load: Literal[False],
    block_bytes: int = ...,
    mapped: bool = ...,
    base: Preprocessor | None = ...,
    refresh_scalers: bool = ...,
) -> Path: ...


def prepare_dataset(
    config: DatasetConfig,
    cache_root: Path,
    *,
    progress: bool = True,
    load: bool = True,
    block_bytes: int = 64 << 20,
    mapped: bool = False,
    base: Preprocessor | None = None,
    refresh_scalers: bool = False,
) -> PreparedDataset | Path:
    """Return the encoded dataset, building the cache on the first call and reading it after.

    The build streams each file in blocks of ``block_bytes``, so its memory
    does not grow with the number of rows. With ``load=False`` the cache is
    only built (``tf4ctr data prepare``) and its folder is returned (the files are hashed
    once, here, not again by the caller). With ``mapped`` the
    splits are :class:`MappedSplit` maps of the cache files instead of arrays in RAM. Raises
    DataError/ConfigError for bad inputs; a failed build leaves nothing
    under ``cache_root``. Prints nothing but the optional tqdm bars.

    With ``base`` (a parent run's fitted preprocessor: continual training), every vocabulary
    is the parent's, extended by this train split's new values; the cache is keyed by it too.
    The numeric scalers stay the parent's, or are fitted on this train split with
    ``refresh_scalers`` (``train.init_numeric: refresh``).
    """
    cache_root = Path(cache_root)
    hashes = _source_hashes(config)
    key = _key_from(config, hashes, base, refresh_scalers)
    target = cache_dir_for(config, cache_root, key)
    if (target / _META).is_file():
        if not load and _matching_meta(target, key) is not None:
            return target
        loaded = _try_load(target, config, key, mapped=mapped) if load else None
        if loaded is not None:
            return loaded
    if target.exists() or target.is_symlink():
        # No meta.json, or one that does not load: a damaged cache under our key's name.
        _remove_damaged_cache(target)
    make_dir(cache_root, "cache_dir")
    _remove_abandoned_builds(cache_root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{config.name}-", dir=cache_root))
    lock_fd = _lock_build(tmp)
    try:
        _build(config, key, hashes, tmp, progress, block_bytes, base, refresh_scalers)
        (tmp / _BUILD_LOCK).unlink()
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process won the race; its cache is as good as ours.
            if not (target / _META).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(lock_fd)
    if not load:
        return target
    loaded = _try_load(target, config, key, mapped=mapped)
    if loaded is None:
        raise UserError(f"{target}: the cache just built cannot be read back")
    return loaded


def _lock_build(tmp: Path) -> int:
    """Hold an OS lock on the build folder's lock file while it is being built.

    The OS drops it when the process dies, however it dies: a build folder whose lock
    can be taken is one whose builder is gone, and the next prepare removes it.
    """
    import fcntl

    fd = os.open(tmp / _BUILD_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _builder_is_gone(path: Path) -> bool:
    try:
        fd = os.open(path / _BUILD_LOCK, os.O_RDWR)  # not O_CREAT: a missing one stays missing
    except FileNotFoundError:
        # A build of tf4ctr <= 0.1 (no lock), or one that is about to rename itself into
        # place. Only age tells these apart.
        return time.time() - path.stat().st_mtime > _ABANDONED_AFTER_S
    try:
        return try_lock(fd)  # taken: its builder is dead
    finally:
        os.close(fd)


def _remove_abandoned_builds(cache_root: Path) -> None:
    """Remove the build folders of dead processes (a killed build cannot clean up after itself)."""
    for path in cache_root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink() and _builder_is_gone(path):
                shutil.rmtree(path, ignore_errors=True)


def _remove_damaged_cache(target: Path) -> None:
    """Remove a cache folder that lost its meta.json, if it holds only what a build writes."""
    if (
        target.is_symlink()
        or not target.is_dir()
        or any(p.name not in _CACHE_ENTRIES for p in target.iterdir())
    ):
        raise UserError(
            f"{target}: occupies this dataset's cache folder but is not a tf4ctr cache "
            "(expected only meta.json, preprocessor.json and the split folders); move it away"
        )
    shutil.rmtree(target)


def _build(
    config: DatasetConfig,
    key: str,
    hashes: dict[str, str],
    tmp: Path,
    progress: bool,
    block_bytes: int,
    base: Preprocessor | None = None,
    refresh_scalers: bool = False,
) -> Preprocessor:
    """Encode every split into ``tmp`` (:func:`encode_splits`), then write the preprocessor's
    state and, last, meta.json: its presence is what marks a directory as complete."""
    preprocessor, rows = encode_splits(
        config,
        tmp,
        progress=progress,
        block_bytes=block_bytes,
        base=base,
        refresh_scalers=refresh_scalers,
    )
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
        "rows": rows,
        "has_group": config.group_col is not None,
        "schema": preprocessor.schema.to_dict(),
    }
    # meta.json last: its presence is what marks a directory as complete.
    _write_json(tmp / _META, meta)
    return preprocessor


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")


def _matching_meta(directory: Path, key: str) -> dict[str, Any] | None:
    """The cache's meta.json when it was written for ``key`` by this format version."""
    try:
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if meta.get("key") != key or meta.get("format_version") != FORMAT_VERSION:
        return None
    return meta


def _try_load(
    directory: Path, config: DatasetConfig, key: str, *, mapped: bool = False
) -> PreparedDataset | None:
    """Read a finished cache; None when it is not one we can trust."""
    meta = _matching_meta(directory, key)
    if meta is None:
        return None
    try:
        state = json.loads((directory / _PREPROCESSOR).read_text(encoding="utf-8"))
        preprocessor = Preprocessor.from_state_dict(state)
        schema = preprocessor.schema
        splits = {
            split: load_split(
                directory / split,
                schema,
                int(meta["rows"][split]),
                meta["has_group"],
                mapped=mapped,
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
