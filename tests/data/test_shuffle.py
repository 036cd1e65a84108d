"""Block shuffle (train.shuffle: block): every row once an epoch, each buffer's rows from
its own few blocks, reproducible from the seed; and its config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tf4ctr.config import parse_run_config
from tf4ctr.data import BatchLoader
from tf4ctr.data.encoded import EncodedSplit
from tf4ctr.data.shuffle import block_order
from tf4ctr.errors import ConfigError


@pytest.mark.parametrize("n", [1, 999, 1000, 1003])
def test_block_order_is_a_permutation_of_every_row(n):
    order = block_order(n, 10, 4, torch.Generator().manual_seed(0))
    assert order.dtype == torch.long
    assert torch.equal(torch.sort(order).values, torch.arange(n))


def test_each_buffer_draws_from_its_own_blocks():
    order = block_order(1000, 10, 4, torch.Generator().manual_seed(0))
    seen: set[int] = set()
    for start in range(0, 1000, 40):  # full blocks only: a buffer is 40 positions
        blocks = set((order[start : start + 40] // 10).tolist())
        assert len(blocks) == 4 and not blocks & seen
        seen |= blocks


def test_block_order_shuffles_blocks_and_rows_within_buffers_reproducibly():
    a = block_order(1000, 10, 4, torch.Generator().manual_seed(3))
    b = block_order(1000, 10, 4, torch.Generator().manual_seed(3))
    c = block_order(1000, 10, 4, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    first_blocks = torch.unique(a[:40] // 10)
    assert not torch.equal(first_blocks, torch.arange(4))  # blocks come in a random order
    assert not torch.equal(a[:40].sort().values, a[:40])  # rows within a buffer are shuffled


def test_one_block_per_buffer_of_one_row_is_the_block_order_itself():
    order = block_order(7, 1, 1, torch.Generator().manual_seed(0))
    assert torch.equal(order.sort().values, torch.arange(7))


def test_block_order_rejects_empty_blocks():
    with pytest.raises(ValueError, match="block_rows"):
        block_order(10, 0, 2, torch.Generator())


def test_loader_with_block_shuffle_yields_every_row_once_per_epoch():
    n = 1003
    split = EncodedSplit(
        categorical=np.arange(n, dtype=np.int32).reshape(n, 1),
        numeric=np.zeros((n, 0), np.float32),
        label=np.zeros(n, np.float32),
    )
    loader = BatchLoader(split, 64, shuffle=True, seed=5, block_shuffle=(50, 3))
    epochs = []
    for _ in range(2):
        ids = torch.cat([b.categorical.flatten() for b in loader])
        assert torch.equal(ids.sort().values, torch.arange(n))
        epochs.append(ids)
    assert not torch.equal(epochs[0], epochs[1])  # each epoch its own order
    loader.set_epoch(1)
    assert torch.equal(torch.cat([b.categorical.flatten() for b in loader]), epochs[1])


def _config(**train):
    return {"name": "r", "dataset": "d.yaml", "model": {"name": "dnn"}, "train": train}


def _project_config(project, **train):
    import yaml

    raw = yaml.safe_load((project / "run.yaml").read_text())
    raw["dataset"] = str(project / "dataset.yaml")
    raw.setdefault("train", {}).update(train)
    return raw


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"shuffle": "blocks"}, "train.shuffle: expected one of full, block"),
        ({"shuffle_block_rows": 0}, "train.shuffle_block_rows: expected a positive integer"),
        ({"shuffle_buffer_blocks": 2.5}, "train.shuffle_buffer_blocks: expected an integer"),
        ({"shuffle_buffer_blocks": True}, "train.shuffle_buffer_blocks: expected an integer"),
    ],
)
def test_bad_shuffle_settings_are_one_line_errors(train, message):
    with pytest.raises(ConfigError, match=message):
        parse_run_config(_config(**train))


def test_a_block_shuffled_run_has_its_own_key_and_a_full_one_keeps_its_key(tiny_project):
    from tf4ctr.experiments.keys import config_key

    plain = config_key(_project_config(tiny_project))
    assert config_key(_project_config(tiny_project, shuffle="full")) == plain
    assert config_key(_project_config(tiny_project, shuffle="block")) != plain
