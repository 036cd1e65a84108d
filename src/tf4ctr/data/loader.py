"""Mini-batches straight from in-memory tensors.

CTR rows are a handful of integers, so torch's DataLoader (one Python call per
row, then collate) would cost more than the model. Here the split becomes
tensors once and every batch is one ``index_select`` per array. Shuffling
draws each epoch's permutation from a generator seeded by (seed, epoch), so a
run is reproducible and can resume at any epoch with :meth:`BatchLoader.set_epoch`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tf4ctr.data.encoded import EncodedSplit
from tf4ctr.data.mapped import MappedSplit
from tf4ctr.data.shuffle import block_order
from tf4ctr.errors import ConfigError

__all__ = ["Batch", "BatchLoader"]


@dataclass
class Batch:
    """One mini-batch; ``categorical`` is int64, ready for ``nn.functional.embedding``."""

    categorical: torch.Tensor
    numeric: torch.Tensor
    label: torch.Tensor
    group: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """The same batch on ``device``."""
        return Batch(
            categorical=self.categorical.to(device, non_blocking=non_blocking),
            numeric=self.numeric.to(device, non_blocking=non_blocking),
            label=self.label.to(device, non_blocking=non_blocking),
            group=None if self.group is None else self.group.to(device, non_blocking=non_blocking),
        )


def _epoch_seed(seed: int, epoch: int) -> int:
    # SeedSequence mixes (seed, epoch) so nearby seeds/epochs give unrelated streams.
    words = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class BatchLoader:
    """Iterates an :class:`EncodedSplit` in batches; each ``iter()`` is one epoch."""

    def __init__(
        self,
        split: EncodedSplit | MappedSplit,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        shard: tuple[int, int] | None = None,
        block_shuffle: tuple[int, int] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, found {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed: expected a non-negative integer, found {seed!r}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        #: (block_rows, buffer_blocks): shuffle blocks of rows, then rows within buffers of
        #: blocks (tf4ctr.data.shuffle), instead of every row at once
        self.block_shuffle = block_shuffle
        # (rank, world size): every global batch (the same order on every rank) is cut into
        # world-size contiguous pieces and this rank gets its own (data-parallel training)
        self.shard = shard if shard is not None and shard[1] > 1 else None
        self._epoch = 0
        self._n = len(split)
        self._mapped = split if isinstance(split, MappedSplit) else None
        if self._mapped is not None:
            return  # batches are gathered from the maps (see _from_mapped)
        # Shares memory with the numpy arrays: no copy of the split is made.
        self._categorical = torch.from_numpy(np.ascontiguousarray(split.categorical))
        self._numeric = torch.from_numpy(np.ascontiguousarray(split.numeric, dtype=np.float32))
        self._label = torch.from_numpy(np.ascontiguousarray(split.label, dtype=np.float32))
        self._group = (
            None
            if split.group is None
            else torch.from_numpy(np.ascontiguousarray(split.group, dtype=np.int64))
        )

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter()`` will draw."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` draw epoch ``epoch``'s order (for resuming a run)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self._n // self.batch_size
        full, rest = divmod(self._n, self.batch_size)
        if self.shard is not None and 0 < rest < self.shard[1]:
            return full  # a last batch too small to give every rank a row is dropped on all
        return full + (rest > 0)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self._epoch
        self._epoch += 1
        order: torch.Tensor | None = None
        if self.shuffle:
            gen = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            if self.block_shuffle is not None:
                order = block_order(self._n, *self.block_shuffle, generator=gen)
            else:
                order = torch.randperm(self._n, generator=gen)
        return self._batches(order)

    def _batches(self, order: torch.Tensor | None) -> Iterator[Batch]:
        for b in range(len(self)):
            start = b * self.batch_size
            stop = min(start + self.batch_size, self._n)
            if self.shard is not None:
                rank, size = self.shard
                start, stop = (
                    start + (stop - start) * rank // size,
                    start + (stop - start) * (rank + 1) // size,
                )
            if order is None:
                yield self._slice(start, stop)
            else:
                yield self._gather(order[start:stop])

    def _from_mapped(self, index: np.ndarray | slice) -> Batch:
        assert self._mapped is not None
        categorical, numeric, label, group = self._mapped.rows(index)
        return Batch(
            categorical=torch.from_numpy(categorical).long(),
            numeric=torch.from_numpy(numeric),
            label=torch.from_numpy(label),
            group=None if group is None else torch.from_numpy(group),
        )

    def _slice(self, start: int, stop: int) -> Batch:
        if self._mapped is not None:
            return self._from_mapped(slice(start, stop))
        # In-order batches are views; only the int32 -> int64 cast copies.
        return Batch(
            categorical=self._categorical[start:stop].long(),
            numeric=self._numeric[start:stop],
            label=self._label[start:stop],
            group=None if self._group is None else self._group[start:stop],
        )

    def _gather(self, idx: torch.Tensor) -> Batch:
        if self._mapped is not None:
            return self._from_mapped(idx.numpy())
        return Batch(
            categorical=self._categorical.index_select(0, idx).long(),
            numeric=self._numeric.index_select(0, idx),
            label=self._label.index_select(0, idx),
            group=None if self._group is None else self._group.index_select(0, idx),
        )
