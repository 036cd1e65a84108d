"""The passes of a cache build: stream each split file through the preprocessor into its files.

The train split is counted (the vocabularies fitted) and every split encoded, one block
of the file in memory at a time; the next block is parsed on a thread while this one is
counted or encoded (:func:`_read_ahead`). Where it can, the train split is read only once
(:func:`_count_and_code_train`). :mod:`tf4ctr.data.store` decides where the folder goes
and writes the files that mark it complete.
"""

from __future__ import annotations

import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from tf4ctr.data.cache_files import NPY_HEADER_BYTES, SplitWriter
from tf4ctr.data.encoded import LocalCodes
from tf4ctr.data.preprocess import Preprocessor, distinct_values, field_threads
from tf4ctr.data.read_progress import ReadBar
from tf4ctr.data.readers import iter_chunks
from tf4ctr.data.schema import DatasetConfig
from tf4ctr.errors import UserError
from tf4ctr.progress import show_bars

__all__ = ["encode_splits"]


def encode_splits(
    config: DatasetConfig,
    tmp: Path,
    *,
    progress: bool,
    block_bytes: int,
    base: Preprocessor | None = None,
    refresh_scalers: bool = False,
) -> tuple[Preprocessor, dict[str, int]]:
    """Stream every split twice at most: count the train split, then encode each split.

    Memory holds one block of the file, the vocabularies and the counts, never
    a whole split: the encoded columns go straight to their ``.npy`` files under
    ``tmp/<split>``. Without a group column or sequence fields the train split is
    read once: see :func:`_count_and_code_train`. Returns the fitted preprocessor
    and the rows of each split.
    """
    preprocessor = Preprocessor(config, base=base, refresh_scalers=refresh_scalers)
    train_path = config.paths["train"]

    def rows_of(path: Path, bar: ReadBar) -> Iterator[tuple[pa.Table, int]]:
        chunks = iter_chunks(path, config, block_bytes=block_bytes, on_bytes=bar.on_bytes)
        # the next block is parsed while this one is counted or encoded
        for table, first_line in _read_ahead(chunks):
            bar.rows_read(table.num_rows)
            yield table, first_line

    def rows_bar(path: Path, what: str, rows: int | None) -> ReadBar:
        desc = f"{config.name}: {what}"
        return ReadBar(path, config, desc=desc, progress=progress, in_bytes=False, rows=rows)

    # Rows of a split are known once a pass has read it: later passes show a total.
    seen: dict[str, int] = {}
    rows: dict[str, int] = {}
    if config.group_col is None and preprocessor.codes_locally:
        rows["train"] = _count_and_code_train(preprocessor, tmp / "train", rows_of, progress)
    else:
        counted = 0

        def train_tables(bar: ReadBar) -> Iterator[pa.Table]:
            nonlocal counted
            for table, _ in rows_of(train_path, bar):
                counted += table.num_rows
                yield table

        with ReadBar(
            train_path, config, desc=f"{config.name}: count train", progress=progress
        ) as bar:
            preprocessor.fit_chunks(train_tables(bar), source=train_path)
        seen["train"] = counted
    for split, path in config.paths.items():
        if split in rows:
            continue
        group_values = None
        if config.group_col is not None:
            with rows_bar(path, f"groups of {split}", seen.get(split)) as bar:
                group_values = distinct_values(t[config.group_col] for t, _ in rows_of(path, bar))
                seen[split] = bar.rows
        writer = SplitWriter(tmp / split, config, has_group=config.group_col is not None)
        with (
            rows_bar(path, f"encode {split}", seen.get(split)) as bar,
            field_threads(len(config.feature_cols)) as pool,
        ):
            for table, first_line in rows_of(path, bar):
                encoded = preprocessor.transform_columns(
                    table, source=path, first_row=first_line, group_values=group_values, pool=pool
                )
                writer.append(encoded)
        rows[split] = writer.close()
    return preprocessor, rows


def _count_and_code_train(
    preprocessor: Preprocessor,
    directory: Path,
    rows_of: Callable[[Path, ReadBar], Iterator[tuple[pa.Table, int]]],
    progress: bool,
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
    writer = SplitWriter(directory, config, has_group=False)
    fields = len(writer.categorical)
    spill = _DistinctSpill(directory.parent / f".{directory.name}-distinct", fields)
    pieces: list[int] = []

    def tables(bar: ReadBar) -> Iterator[pa.Table]:
        for table, first_line in rows_of(path, bar):
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
        with ReadBar(path, config, desc=f"{config.name}: count train", progress=progress) as bar:
            preprocessor.fit_chunks(tables(bar), source=path, local_codes=keep)
    finally:
        spill.close()
    rows = writer.close()
    vocab_sizes = preprocessor.schema.vocab_sizes
    options = {"unit": " fields", "disable": not show_bars(progress), "leave": False}
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
        offset = NPY_HEADER_BYTES
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
