"""BatchLoader: full coverage per epoch, seeded determinism, dtypes and shapes, drop_last."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tf4ctr.data.encoded import EncodedSplit
from tf4ctr.data.loader import Batch, BatchLoader
from tf4ctr.errors import ConfigError

N = 103


def make_split(n: int = N, *, group: bool = True, n_numeric: int = 2) -> EncodedSplit:
    # Column 0 is the row id, so every batch says which rows it holds.
    ids = np.arange(n, dtype=np.int32)
    return EncodedSplit(
        categorical=np.stack([ids, ids % 7 + 1], axis=1),
        numeric=np.repeat(ids.astype(np.float32)[:, None] / 2, n_numeric, axis=1),
        label=(ids % 2).astype(np.float32),
        group=(ids // 10).astype(np.int64) if group else None,
    )


def order(loader: BatchLoader) -> list[int]:
    return torch.cat([b.categorical[:, 0] for b in loader]).tolist()


def test_batches_are_consistent_rows_with_expected_types() -> None:
    loader = BatchLoader(make_split(), 10, shuffle=True, seed=3)
    assert len(loader) == 11 and loader.num_samples == N
    sizes = []
    for batch in loader:
        assert isinstance(batch, Batch)
        assert batch.categorical.dtype == torch.int64 and batch.categorical.shape[1] == 2
        assert batch.numeric.dtype == torch.float32 and batch.numeric.shape[1] == 2
        assert batch.label.dtype == torch.float32 and batch.label.ndim == 1
        assert batch.group is not None and batch.group.dtype == torch.int64
        ids = batch.categorical[:, 0]
        # Every array was gathered with the same indices.
        assert torch.equal(batch.numeric[:, 0], ids.float() / 2)
        assert torch.equal(batch.label, (ids % 2).float())
        assert torch.equal(batch.group, ids // 10)
        sizes.append(len(batch))
    assert sizes == [10] * 10 + [3]


def test_every_row_once_per_epoch_and_epochs_differ() -> None:
    loader = BatchLoader(make_split(), 16, shuffle=True, seed=0)
    first, second = order(loader), order(loader)
    assert sorted(first) == list(range(N)) and sorted(second) == list(range(N))
    assert first != second and first != list(range(N))


def test_same_seed_same_order_and_resume() -> None:
    a = BatchLoader(make_split(), 16, shuffle=True, seed=42)
    b = BatchLoader(make_split(), 16, shuffle=True, seed=42)
    c = BatchLoader(make_split(), 16, shuffle=True, seed=43)
    orders_a = [order(a) for _ in range(3)]
    assert orders_a == [order(b) for _ in range(3)]
    assert order(c) != orders_a[0]
    b.set_epoch(1)
    assert b.epoch == 1 and order(b) == orders_a[1]


def test_no_shuffle_is_file_order() -> None:
    loader = BatchLoader(make_split(), 25)
    assert order(loader) == list(range(N)) == order(loader)


def test_drop_last() -> None:
    loader = BatchLoader(make_split(), 10, shuffle=True, drop_last=True)
    assert len(loader) == 10
    batches = list(loader)
    assert len(batches) == 10 and all(len(b) == 10 for b in batches)
    assert len(BatchLoader(make_split(5), 10, drop_last=True)) == 0


def test_no_group_no_numeric_and_to() -> None:
    loader = BatchLoader(make_split(group=False, n_numeric=0), 50)
    batch = next(iter(loader))
    assert batch.group is None and batch.numeric.shape == (50, 0)
    moved = batch.to("cpu")
    assert torch.equal(moved.categorical, batch.categorical)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"batch_size": 2.5}, {"batch_size": 8, "seed": -1}]
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        BatchLoader(make_split(), **kwargs)
