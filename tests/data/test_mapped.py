"""The memory-mapped split gives exactly the batches of the in-memory one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tf4ctr import run
from tf4ctr.config import load_run_config
from tf4ctr.data import BatchLoader, prepare_dataset
from tf4ctr.data.mapped import MappedSplit


def _both(tiny_project: Path):
    cfg = load_run_config(tiny_project / "run.yaml")
    dataset = run.resolve_dataset(cfg)
    in_ram = prepare_dataset(dataset, tiny_project / "cache", progress=False)
    mapped = prepare_dataset(dataset, tiny_project / "cache", progress=False, mapped=True)
    return in_ram, mapped


def test_mapped_batches_equal_in_memory_batches(tiny_project):
    in_ram, mapped = _both(tiny_project)
    assert isinstance(mapped.train, MappedSplit) and isinstance(mapped.train.label, np.memmap)
    for shuffle in (False, True):
        a = BatchLoader(in_ram.train, 256, shuffle=shuffle, seed=7)
        b = BatchLoader(mapped.train, 256, shuffle=shuffle, seed=7)
        for _ in range(2):  # two epochs: two different shuffles
            for x, y in zip(a, b, strict=True):
                assert torch.equal(x.categorical, y.categorical)
                assert x.categorical.dtype == y.categorical.dtype == torch.int64
                assert torch.equal(x.numeric, y.numeric) and torch.equal(x.label, y.label)
                assert torch.equal(x.group, y.group)


def test_memory_mapped_training_gives_the_same_run(tiny_project, monkeypatch):
    from tf4ctr.cli import main
    from tf4ctr.data import loader

    monkeypatch.chdir(tiny_project)
    seen = []
    real = loader.BatchLoader.__init__

    def spy(self, split, *args, **kwargs):
        seen.append(type(split).__name__)
        real(self, split, *args, **kwargs)

    monkeypatch.setattr(loader.BatchLoader, "__init__", spy)
    assert main(["train", "--config", "run.yaml", "train.epochs=2", "name=ram"]) == 0
    assert "MappedSplit" not in seen
    assert main(["train", "--config", "run.yaml", "train.epochs=2", "name=map",
                 "train.memory_map=true"]) == 0  # fmt: skip
    assert "MappedSplit" in seen
    import json

    a = json.loads((tiny_project / "runs" / "ram" / "metrics.json").read_text())
    b = json.loads((tiny_project / "runs" / "map" / "metrics.json").read_text())
    for split in ("valid", "test"):
        for k in ("auc", "gauc", "logloss"):
            assert a[split][k] == b[split][k]
