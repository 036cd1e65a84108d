"""The model, data and steps that tests/helpers/sparse_ddp.py trains under torchrun and
tests/test_distributed.py trains in one process: the same global batches either way."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from tf4ctr.config import LossConfig, TrainConfig
from tf4ctr.data import BatchLoader
from tf4ctr.data.preprocess import EncodedSplit
from tf4ctr.models import build_model
from tf4ctr.run import build_objective, layer_options

STEPS = 6
VOCAB = [40, 90, 7]


@dataclass
class Schema:
    vocab_sizes: list
    numeric: tuple = ()


def build(l2: float):
    """A DNN without batch norm or dropout (each rank's batch statistics and masks would be
    its own), its objective and a sparse-embedding train config."""
    config = TrainConfig(progress=False, sparse_embedding=True, lr=0.01)
    torch.manual_seed(0)
    model = build_model(
        "dnn", Schema(VOCAB), layer_options=layer_options(config), embedding_dim=4,
        hidden_units=[16], dropout=0.0, batch_norm=False,
    )  # fmt: skip
    return model, build_objective(LossConfig(name="bce", embedding_l2=l2)), config


class _First:
    def __init__(self, loader: BatchLoader, steps: int) -> None:
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.steps)


def loader(shard: tuple[int, int] | None = None, steps: int = STEPS):
    rng = np.random.default_rng(0)
    n = 64 * steps
    cat = np.stack([rng.integers(0, v, n) for v in VOCAB], 1).astype(np.int32)
    label = (rng.random(n) < 0.4).astype(np.float32)
    split = EncodedSplit(categorical=cat, numeric=np.zeros((n, 0), np.float32), label=label)
    return _First(BatchLoader(split, 64, shuffle=True, seed=1, shard=shard), steps)
