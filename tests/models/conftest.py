"""Fixtures for model tests: a tiny schema for shapes and gradients, and a small
synthetic dataset (with a logistic-regression baseline) for "does it learn"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from tf4ctr.config import TrainConfig
from tf4ctr.data import BatchLoader, SyntheticSpec, prepare_dataset, write_synthetic_dataset
from tf4ctr.framework import Objective, TwinFocusLoss
from tf4ctr.models import build_model
from tf4ctr.nn import FeatureInput
from tf4ctr.train import Trainer, auc


@dataclass
class TinySchema:
    vocab_sizes: list
    numeric: tuple = ()


TINY = TinySchema(vocab_sizes=[7, 12, 5, 30, 9], numeric=("n1",))


@pytest.fixture
def tiny_schema() -> TinySchema:
    return TINY


@pytest.fixture
def tiny_batch():
    g = torch.Generator().manual_seed(0)
    n = 64
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in TINY.vocab_sizes], 1)
    num = torch.rand(n, len(TINY.numeric), generator=g)
    y = (torch.rand(n, generator=g) > 0.5).float()
    return FeatureInput(cat, num), y


def check_shapes_and_gradients(model: torch.nn.Module, batch, *, twin: bool) -> None:
    """Output shapes, and every parameter receives a non-zero gradient from one step."""
    x, y = batch
    model.train()
    out = model(x)
    assert out.logit.shape == y.shape
    if twin:
        assert out.z_s is not None and out.z_s.shape == y.shape
        assert out.z_c is not None and out.z_c.shape == y.shape
    loss_fn = Objective(TwinFocusLoss() if twin else None)
    loss_fn(model, out, y).total.backward()
    dead = [
        n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)
    ]
    assert not dead, f"parameters without gradient: {dead}"


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class LearnData:
    prepared: object
    lr_auc: float


@pytest.fixture(scope="session")
def learn_data(tmp_path_factory) -> LearnData:
    """Synthetic data with pairwise interactions (labelled synthetic), and the
    validation AUC of a one-hot logistic regression on it: the bar a model with
    interactions must clear."""
    root: Path = tmp_path_factory.mktemp("synthetic")
    spec = SyntheticSpec(n_train=30_000, n_valid=8_000, n_test=2_000, seed=7)
    cfg = write_synthetic_dataset(root / "data", spec)
    prepared = prepare_dataset(cfg, root / "cache", progress=False)
    enc = OneHotEncoder(handle_unknown="ignore")
    xtr = enc.fit_transform(prepared.train.categorical)
    xva = enc.transform(prepared.valid.categorical)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(xtr, prepared.train.label)
    return LearnData(prepared, auc(prepared.valid.label, lr.decision_function(xva)))


def quick_valid_auc(
    data: LearnData, name: str, *, loss: str = "bce", epochs: int = 6, lr: float = 3e-3, **hparams
) -> float:
    """Train a model briefly on the synthetic data and return its best validation AUC."""
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_model(name, data.prepared.schema, **hparams)
    objective = Objective(TwinFocusLoss() if loss == "tf" else None)
    cfg = TrainConfig(
        batch_size=1024, epochs=epochs, lr=lr, patience=2, monitor="auc", progress=False
    )
    trainer = Trainer(model, objective, cfg)
    result = trainer.fit(
        BatchLoader(data.prepared.train, 1024, shuffle=True, seed=0),
        BatchLoader(data.prepared.valid, 8192),
    )
    return result.best_valid["auc"]
