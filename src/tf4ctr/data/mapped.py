"""An encoded split read straight from the cache's ``.npy`` files, memory-mapped.

The in-memory loader holds every column of a split in RAM (about 7 GB for Criteo_x4). A
:class:`MappedSplit` holds only the maps: a batch gathers its rows from each column file, so
the process's own (anonymous) memory stays near model + optimizer + a few batches whatever
the number of rows. Pages the gathers touch sit in the OS page cache, which the kernel
reclaims under pressure (they are clean file pages), so a table larger than RAM trains too,
at the speed of the disk.

Gathering the same row indices in the same order gives exactly the batches the in-memory
loader gives, so a run trains to the same weights either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MappedSplit"]


@dataclass
class MappedSplit:
    """Per-column maps of one split; ``categorical`` columns are int32 (``[rows]`` or
    ``[rows, width]`` for a sequence), ``numeric`` float32, ``label`` float32, ``group`` int64."""

    categorical_columns: list[np.ndarray]
    numeric_columns: list[np.ndarray]
    label: np.ndarray
    group: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def num_categorical(self) -> int:
        return sum(1 if c.ndim == 1 else c.shape[1] for c in self.categorical_columns)

    def rows(
        self, index: np.ndarray | slice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(categorical int32 [B, F], numeric float32 [B, N], label [B], group [B] or None)
        for a slice or an index array, in that order."""
        n = len(self.label[index])
        categorical = np.empty((n, self.num_categorical), dtype=np.int32)
        at = 0
        for col in self.categorical_columns:
            width = 1 if col.ndim == 1 else col.shape[1]
            categorical[:, at : at + width] = col[index].reshape(n, width)
            at += width
        numeric = np.empty((n, len(self.numeric_columns)), dtype=np.float32)
        for j, col in enumerate(self.numeric_columns):
            numeric[:, j] = col[index]
        # copies: a batch must not alias the read-only maps
        group = None if self.group is None else np.array(self.group[index], dtype=np.int64)
        return categorical, numeric, np.array(self.label[index], dtype=np.float32), group
