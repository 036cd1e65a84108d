"""The files of one cached split: one ``.npy`` per field, plus the label and the group.

:class:`SplitWriter` fills them block by block during a build (their length is known
only at the end, so each header is written last); :func:`load_split` reads them back,
into RAM or as memory maps.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tf4ctr.data.encoded import EncodedColumns, EncodedSplit, FeatureSchema
from tf4ctr.data.mapped import MappedSplit
from tf4ctr.data.schema import DatasetConfig

__all__ = ["GROUP", "LABEL", "NPY_HEADER_BYTES", "NpyColumnWriter", "SplitWriter", "load_split"]

LABEL = "__label__"
GROUP = "__group__"

# An .npy header for a 1-D array of up to ~10^30 rows fits in this many bytes
# (numpy pads headers to a multiple of 64), so it can be written after the data.
NPY_HEADER_BYTES = 128


class NpyColumnWriter:
    """Append 1-D chunks to an ``.npy`` file whose length is known only at the end."""

    def __init__(self, path: Path, dtype: type, width: int = 1) -> None:
        self.path, self.dtype, self.rows, self.width = path, np.dtype(dtype), 0, width
        self._fh = open(path, "wb")  # noqa: SIM115 - stays open across append() calls
        self._fh.write(b"\0" * NPY_HEADER_BYTES)

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
        if len(header.getvalue()) != NPY_HEADER_BYTES:
            raise RuntimeError(f"{self.path}: unexpected .npy header size {len(header.getvalue())}")
        self._fh.seek(0)
        self._fh.write(header.getvalue())
        self._fh.close()


class SplitWriter:
    """One ``.npy`` per field (plus label and group) of one split, filled chunk by chunk.

    The files are those of ``preprocessor.schema``, in its order (vocabulary fields, a
    sequence's max_len columns wide, then numeric fields), known from the config alone.
    """

    def __init__(self, directory: Path, config: DatasetConfig, *, has_group: bool) -> None:
        directory.mkdir(parents=True)
        features = config.feature_cols
        self.categorical = [
            NpyColumnWriter(
                directory / f"{f.name}.npy",
                np.int32,
                f.max_len if f.is_sequence and f.max_len else 1,
            )
            for f in features
            if f.is_categorical
        ]
        self._numeric = [
            NpyColumnWriter(directory / f"{f.name}.npy", np.float32)
            for f in features
            if not f.is_categorical
        ]
        self._label = NpyColumnWriter(directory / f"{LABEL}.npy", np.float32)
        self._group = NpyColumnWriter(directory / f"{GROUP}.npy", np.int64) if has_group else None

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


def load_split(
    directory: Path, schema: FeatureSchema, rows: int, has_group: bool, *, mapped: bool = False
) -> EncodedSplit | MappedSplit:
    """One split's files as arrays in RAM, or as memory maps with ``mapped``; ValueError
    when a file's shape or dtype is not the schema's."""

    def load(name: str, dtype: type, width: int = 1) -> np.ndarray:
        arr = np.load(
            directory / f"{name}.npy", allow_pickle=False, mmap_mode="r" if mapped else None
        )
        shape = (rows,) if width == 1 else (rows, width)
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"{directory / name}.npy: shape {arr.shape} dtype {arr.dtype}")
        return arr

    label = load(LABEL, np.float32)
    group = load(GROUP, np.int64) if has_group else None
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
