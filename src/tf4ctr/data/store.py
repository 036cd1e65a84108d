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
import io
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from tf4ctr.data.encoded import EncodedColumns, EncodedSplit, FeatureSchema, LocalCodes
from tf4ctr.data.mapped import MappedSplit
from tf4ctr.data.preprocess import Preprocessor, distinct_values, field_threads
from tf4ctr.data.readers import byte_total, iter_chunks, reports_bytes, sha256_file
from tf4ctr.data.schema import SPLITS, DatasetConfig
from tf4ctr.errors import UserError
from tf4ctr.fileio import try_lock
from tf4ctr.progress import show_bars

__all__ = ["FORMAT_VERSION", "PreparedDataset", "cache_dir_for", "cache_key", "prepare_dataset"]

# Bump whenever the bytes written for the same inputs would change (index
# convention, bucketers, file layout), so old caches are not reused.
FORMAT_VERSION = 2

_META = "meta.json"
_PREPROCESSOR = "preprocessor.json"
_LABEL = "__label__"
_GROUP = "__group__"
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


@overload
def prepare_dataset(
    config: DatasetConfig,
    cache_root: Path,
    *,
    progress: bool = ...,
    load: Literal[True] = ...,
    block_bytes: int = ...,
    mapped: bool = ...,
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
) -> Path: ...


def prepare_dataset(
    config: DatasetConfig,
    cache_root: Path,
    *,
    progress: bool = True,
    load: bool = True,
    block_bytes: int = 64 << 20,
    mapped: bool = False,
) -> PreparedDataset | Path:
    """Return the encoded dataset, building the cache on the first call and reading it after.

    The build streams each file in blocks of ``block_bytes``, so its memory
    does not grow with the number of rows. With ``load=False`` the cache is
    only built (``tf4ctr data prepare``) and its folder is returned (the files are hashed
    once, here, not again by the caller). With ``mapped`` the
    splits are :class:`MappedSplit` maps of the cache files instead of arrays in RAM. Raises
    DataError/ConfigError for bad inputs; a failed build leaves nothing
    under ``cache_root``. Prints nothing but the optional tqdm bars.
    """
    cache_root = Path(cache_root)
    hashes = _source_hashes(config)
    key = _key_from(config, hashes)
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
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(cache_root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{config.name}-", dir=cache_root))
    lock_fd = _lock_build(tmp)
    try:
        _build(config, key, hashes, tmp, progress, block_bytes)
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
) -> Preprocessor:
    """Stream every split twice at most: count the train split, then encode each split.

    Memory holds one block of the file, the vocabularies and the counts, never
    a whole split: the encoded columns go straight to their ``.npy`` files.
    Without a group column or sequence fields the train split is read once:
    see :func:`_count_and_code_train`.
    """
    preprocessor = Preprocessor(config)
    train_path = config.paths["train"]

    def rows_of(path: Path, bar: tqdm, by_bytes: bool = False):
        # A bar in bytes (the first read of a split, whose rows nobody knows yet) follows
        # the reader's position; the others count rows.
        by_bytes = by_bytes and reports_bytes(path, config)

        def at(position: int) -> None:
            bar.update(position - bar.n)

        chunks = iter_chunks(
            path, config, block_bytes=block_bytes, on_bytes=at if by_bytes else None
        )
        # the next block is parsed while this one is counted or encoded
        for table, first_line in _read_ahead(chunks):
            if not by_bytes:
                bar.update(table.num_rows)
            yield table, first_line

    bar_options = {
        "unit": " rows",
        "unit_scale": True,
        "disable": not show_bars(progress),
        "leave": False,
    }
    # Rows of a split are known once a pass has read it: later passes show a total.
    seen: dict[str, int] = {}
    rows: dict[str, int] = {}
    if config.group_col is None and preprocessor.codes_locally:
        rows["train"] = _count_and_code_train(preprocessor, tmp / "train", rows_of, bar_options)
    else:
        counted = 0

        def train_tables(bar: tqdm) -> Iterator[pa.Table]:
            nonlocal counted
            for table, _ in rows_of(train_path, bar, by_bytes=True):
                counted += table.num_rows
                yield table

        with tqdm(
            desc=f"{config.name}: count train", **_bytes_bar(train_path, config, bar_options)
        ) as bar:
            preprocessor.fit_chunks(train_tables(bar), source=train_path)
        seen["train"] = counted
    schema = preprocessor.schema
    for split, path in config.paths.items():
        if split in rows:
            continue
        group_values = None
        if config.group_col is not None:
            with tqdm(
                desc=f"{config.name}: groups of {split}", total=seen.get(split), **bar_options
            ) as bar:
                group_values = distinct_values(t[config.group_col] for t, _ in rows_of(path, bar))
                seen[split] = bar.n
        writer = _SplitWriter(tmp / split, config, has_group=config.group_col is not None)
        with (
            tqdm(
                desc=f"{config.name}: encode {split}", total=seen.get(split), **bar_options
            ) as bar,
            field_threads(len(config.feature_cols)) as pool,
        ):
            for table, first_line in rows_of(path, bar):
                encoded = preprocessor.transform_columns(
                    table, source=path, first_row=first_line, group_values=group_values, pool=pool
                )
                writer.append(encoded)
        rows[split] = writer.close()
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
        "schema": schema.to_dict(),
    }
    # meta.json last: its presence is what marks a directory as complete.
    _write_json(tmp / _META, meta)
    return preprocessor


def _bytes_bar(path: Path, config: DatasetConfig, options: dict[str, Any]) -> dict[str, Any]:
    """Bar options for the first read of a split: a total in bytes where the reader can say
    how far it has come (a plain CSV or TSV), else a count of rows without a total."""
    total = byte_total(path, config)
    if total is None:
        return options
    return {**options, "unit": "B", "unit_divisor": 1024, "total": total}


def _count_and_code_train(
    preprocessor: Preprocessor,
    directory: Path,
    rows_of: Callable[..., Iterator[tuple[pa.Table, int]]],
    bar_options: dict[str, Any],
) -> int:
    """Fit on the train split and encode it from one read of the file; its rows.

    While the split is counted, each block's vocabulary fields are written as
    codes into the block's own distinct keys (:class:`LocalCodes`), and those
    keys are kept on disk; once the vocabularies exist, each field's file is
    rewritten in place with the indices the codes stand for. Parsing the text
    is the dearest part of a build, and this saves a second parse of the
    largest split; the indices are those of encoding it afresh.
    """
    config = preprocessor.config
    path = config.paths["train"]
    writer = _SplitWriter(directory, config, has_group=False)
    fields = len(writer.categorical)
    spill = _DistinctSpill(directory.parent / f".{directory.name}-distinct", fields)
    pieces: list[int] = []

    def tables(bar: tqdm) -> Iterator[pa.Table]:
        for table, first_line in rows_of(path, bar, by_bytes=True):
            writer.append(
                preprocessor.transform_columns(
                    table, source=path, first_row=first_line, vocabulary_fields=False
                )
            )
            pieces.append(table.num_rows)
            yield table

    def keep(position: int, local: LocalCodes) -> None:
        writer.categorical[position].append(local.rows)
        spill.write(position, local.distinct)

    try:
        with tqdm(
            desc=f"{config.name}: count train", **_bytes_bar(path, config, bar_options)
        ) as bar:
            preprocessor.fit_chunks(tables(bar), source=path, local_codes=keep)
    finally:
        spill.close()
    rows = writer.close()
    vocab_sizes = preprocessor.schema.vocab_sizes
    options = {**bar_options, "unit": " fields", "unit_scale": False}
    with (
        tqdm(desc=f"{config.name}: encode train", total=fields, **options) as bar,
        field_threads(fields) as pool,
    ):

        def recode(position: int) -> None:
            _recode_in_place(
                writer.categorical[position].path,
                pieces,
                spill.read(position),
                lambda distinct: preprocessor.recode(position, distinct),
                vocab_size=vocab_sizes[position],
            )
            bar.update(1)

        if pool is None:
            for position in range(fields):
                recode(position)
        else:
            list(pool.map(recode, range(fields)))
    spill.remove()
    return rows


# Local codes are turned into indices a few blocks at a time, so that the vocabulary's
# lookup table, built once per call, is not built for fewer keys than it holds.
_RECODE_ROWS = 1 << 22


def _recode_in_place(
    path: Path,
    pieces: list[int],
    distincts: Iterator[pa.Array],
    recode: Callable[[pa.Array], np.ndarray],
    *,
    vocab_size: int,
) -> None:
    """Replace the local codes in an int32 ``.npy`` by ``recode(distinct)[code]``, block by block."""
    with open(path, "r+b") as fh:
        offset = _NPY_HEADER_BYTES
        batch: list[tuple[int, pa.Array]] = []

        def flush() -> None:
            nonlocal offset
            keys = [d for _, d in batch]
            codes = recode(pa.concat_arrays(keys) if len(keys) > 1 else keys[0])
            local = np.empty(sum(n for n, _ in batch), dtype=np.int32)
            fh.seek(offset)
            if fh.readinto(local) != local.nbytes:  # type: ignore[arg-type]
                raise UserError(f"{path}: shorter than the rows written to it")
            if len(batch) > 1:
                # each block's codes count from its own keys' start in the concatenation
                starts = np.cumsum([0, *(len(d) for d in keys[:-1])], dtype=np.int32)
                local += np.repeat(starts, [n for n, _ in batch])
            fh.seek(offset)
            fh.write(codes[local])
            offset += local.nbytes
            batch.clear()

        keys_held = rows_held = 0
        for n, distinct in zip(pieces, distincts, strict=True):
            batch.append((n, distinct))
            keys_held += len(distinct)
            rows_held += n
            if keys_held >= vocab_size or rows_held >= _RECODE_ROWS:
                flush()
                keys_held = rows_held = 0
        if batch:
            flush()


class _DistinctSpill:
    """Each block's distinct keys of each vocabulary field, on disk until the vocabularies exist.

    One Arrow IPC stream per field; each field is written from one thread at a time.
    """

    def __init__(self, directory: Path, fields: int) -> None:
        directory.mkdir()
        self.directory = directory
        self._paths = [directory / f"{i}.arrows" for i in range(fields)]
        self._files: list[Any] = [None] * fields
        self._writers: list[Any] = [None] * fields

    def write(self, position: int, distinct: pa.Array) -> None:
        if self._writers[position] is None:
            self._files[position] = pa.OSFile(str(self._paths[position]), "wb")
            schema = pa.schema([("distinct", distinct.type)])
            self._writers[position] = pa.ipc.new_stream(self._files[position], schema)
        self._writers[position].write_batch(pa.record_batch([distinct], names=["distinct"]))

    def close(self) -> None:
        for writer, file in zip(self._writers, self._files, strict=True):
            if writer is not None:
                writer.close()
                file.close()

    def read(self, position: int) -> Iterator[pa.Array]:
        if self._writers[position] is None:
            return
        with pa.OSFile(str(self._paths[position])) as file, pa.ipc.open_stream(file) as reader:
            for batch in reader:
                yield batch.column(0)

    def remove(self) -> None:
        shutil.rmtree(self.directory)


_T = TypeVar("_T")


def _read_ahead(items: Iterator[_T]) -> Iterator[_T]:
    """Yield from ``items``, producing the next item on a thread while the caller holds this one.

    Memory holds at most two items more than the caller's. An exception of
    ``items`` is raised here, when the caller reaches it; a caller that stops
    early stops the thread (after the item it is producing) and closes ``items``.
    """
    handoff: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(message: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="tf4ctr-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


# An .npy header for a 1-D array of up to ~10^30 rows fits in this many bytes
# (numpy pads headers to a multiple of 64), so it can be written after the data.
_NPY_HEADER_BYTES = 128


class _NpyColumnWriter:
    """Append 1-D chunks to an ``.npy`` file whose length is known only at the end."""

    def __init__(self, path: Path, dtype: type, width: int = 1) -> None:
        self.path, self.dtype, self.rows, self.width = path, np.dtype(dtype), 0, width
        self._fh = open(path, "wb")  # noqa: SIM115 - stays open across append() calls
        self._fh.write(b"\0" * _NPY_HEADER_BYTES)

    def append(self, values: np.ndarray) -> None:
        np.ascontiguousarray(values, dtype=self.dtype).tofile(self._fh)
        self.rows += len(values)

    def close(self) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.rows,) if self.width == 1 else (self.rows, self.width),
            },
        )
        if len(header.getvalue()) != _NPY_HEADER_BYTES:
            raise RuntimeError(f"{self.path}: unexpected .npy header size {len(header.getvalue())}")
        self._fh.seek(0)
        self._fh.write(header.getvalue())
        self._fh.close()


class _SplitWriter:
    """One ``.npy`` per field (plus label and group) of one split, filled chunk by chunk.

    The files are those of ``preprocessor.schema``, in its order (vocabulary fields, a
    sequence's max_len columns wide, then numeric fields), known from the config alone.
    """

    def __init__(self, directory: Path, config: DatasetConfig, *, has_group: bool) -> None:
        directory.mkdir(parents=True)
        features = config.feature_cols
        self.categorical = [
            _NpyColumnWriter(
                directory / f"{f.name}.npy",
                np.int32,
                f.max_len if f.is_sequence and f.max_len else 1,
            )
            for f in features
            if f.is_categorical
        ]
        self._numeric = [
            _NpyColumnWriter(directory / f"{f.name}.npy", np.float32)
            for f in features
            if not f.is_categorical
        ]
        self._label = _NpyColumnWriter(directory / f"{_LABEL}.npy", np.float32)
        self._group = _NpyColumnWriter(directory / f"{_GROUP}.npy", np.int64) if has_group else None

    def append(self, block: EncodedColumns) -> None:
        """Write a block; one without vocabulary fields leaves those files to the caller."""
        if block.categorical:
            for writer, values in zip(self.categorical, block.categorical, strict=True):
                writer.append(values)
        for writer, values in zip(self._numeric, block.numeric, strict=True):
            writer.append(values)
        self._label.append(block.label)
        if self._group is not None:
            assert block.group is not None
            self._group.append(block.group)

    def close(self) -> int:
        writers = [*self.categorical, *self._numeric, self._label]
        writers += [self._group] if self._group is not None else []
        for writer in writers:
            writer.close()
        return self._label.rows


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
            split: _load_split(
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


def _load_split(
    directory: Path, schema: FeatureSchema, rows: int, has_group: bool, *, mapped: bool = False
) -> EncodedSplit | MappedSplit:
    def load(name: str, dtype: type, width: int = 1) -> np.ndarray:
        arr = np.load(
            directory / f"{name}.npy", allow_pickle=False, mmap_mode="r" if mapped else None
        )
        shape = (rows,) if width == 1 else (rows, width)
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"{directory / name}.npy: shape {arr.shape} dtype {arr.dtype}")
        return arr

    label = load(_LABEL, np.float32)
    group = load(_GROUP, np.int64) if has_group else None
    if mapped:
        return MappedSplit(
            categorical_columns=[load(f.name, np.int32, f.width) for f in schema.categorical],
            numeric_columns=[load(f.name, np.float32) for f in schema.numeric],
            label=label,
            group=group,
        )

    def stack(fields: tuple, dtype: type) -> np.ndarray:
        if not fields:
            return np.empty((rows, 0), dtype=dtype)
        parts = [load(f.name, dtype, f.width).reshape(rows, -1) for f in fields]
        return np.ascontiguousarray(np.concatenate(parts, axis=1))

    return EncodedSplit(
        categorical=stack(schema.categorical, np.int32),
        numeric=stack(schema.numeric, np.float32),
        label=label,
        group=group,
    )
