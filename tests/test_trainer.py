"""Trainer pieces: clipping (dense and sparse), the sparse-embedding option, early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.models.conftest import TINY
from tf4ctr.config import TrainConfig
from tf4ctr.framework import Objective
from tf4ctr.models import available_models, build_model
from tf4ctr.nn import FeatureEmbedding, FeatureInput
from tf4ctr.train.trainer import Trainer, clip_grad_norm, make_optimizers, monitor_value


def test_clip_matches_torch_for_dense():
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2, 2))
    a.grad = torch.tensor([3.0, 0.0, 4.0])
    b.grad = torch.full((2, 2), 6.0)
    total = clip_grad_norm([a, b], 1.0)
    assert total == pytest.approx(math.sqrt(9 + 16 + 4 * 36))
    norm_after = math.sqrt(a.grad.pow(2).sum() + b.grad.pow(2).sum())
    assert norm_after == pytest.approx(1.0, rel=1e-5)


def test_clip_handles_sparse_gradients():
    w = torch.nn.Parameter(torch.zeros(10, 2))
    dense = torch.nn.Parameter(torch.zeros(1))
    out = torch.nn.functional.embedding(torch.tensor([1, 1, 4]), w, sparse=True)
    (out * torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 4.0]])).sum().backward()
    dense.grad = torch.tensor([12.0])
    total = clip_grad_norm([w, dense], 1.0)
    assert total == pytest.approx(13.0)
    assert w.grad.is_sparse
    norm_after = math.sqrt(w.grad.to_dense().pow(2).sum() + dense.grad.pow(2).sum())
    assert norm_after == pytest.approx(1.0, rel=1e-5)


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in TINY.vocab_sizes], 1)
    return FeatureInput(cat, torch.rand(n, 1, generator=g)), (
        torch.rand(n, generator=g) > 0.5
    ).float()


def test_sparse_option_gives_sparse_grads_and_lazy_adam():
    torch.manual_seed(0)
    model = build_model(
        "tf4ctr", TINY, embedding_dim=4, simple_hidden_units=[8], complex_hidden_units=[8, 8]
    )
    optimizers = make_optimizers(model, TrainConfig(sparse_embedding=True))
    assert [type(o).__name__ for o in optimizers] == ["Adam", "RowSparseAdam"]
    tables = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]
    assert len(tables) == 2 and all(t.sparse for t in tables)
    x, y = _batch()
    before = tables[0].weight.detach().clone()
    parts = Objective(embedding_l2=0.1)(model, model(x), y)
    parts.total.backward()
    assert tables[0].weight.grad.is_sparse
    for opt in optimizers:
        opt.step()
    touched = torch.unique(x.categorical + tables[0].offsets)
    changed = (tables[0].weight.detach() != before).any(dim=1).nonzero().flatten()
    assert set(changed.tolist()) == set(touched.tolist())  # rows not in the batch stay put


def test_monitor_value():
    m = {"auc": 0.8, "gauc": 0.7, "logloss": 0.4}
    assert monitor_value(m, "auc+gauc") == pytest.approx(1.5)
    assert monitor_value(m, "auc") == 0.8
    assert monitor_value(m, "logloss") == -0.4
    assert monitor_value(m, "auc-logloss") == pytest.approx(0.8 - 0.4)
    assert monitor_value({"auc": 0.8, "logloss": 0.4}, "auc+gauc") == 0.8  # no groups: AUC alone


class _Scripted:
    """A loader stand-in: the trainer only iterates batches."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def test_early_stopping_reduces_lr_and_restores_best(monkeypatch):
    torch.manual_seed(0)
    model = build_model("dnn", TINY, embedding_dim=4, hidden_units=[8])
    cfg = TrainConfig(epochs=10, patience=2, lr=1e-2, reduce_lr_factor=0.1, progress=False)
    trainer = Trainer(model, Objective(), cfg)
    scores = iter([0.70, 0.75, 0.74, 0.73, 0.99])
    snapshots = []

    def fake_evaluate(loader):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"auc": next(scores), "logloss": 0.5, "seconds": 0.0}, None

    monkeypatch.setattr(trainer, "_evaluate", fake_evaluate)
    x, y = _batch()
    batch = type("B", (), {"categorical": x.categorical, "numeric": x.numeric, "label": y})
    result = trainer.fit(_Scripted([batch]), _Scripted([]))
    assert result.best_epoch == 2 and result.stopped_early and len(result.history) == 4
    assert [round(r["lr"], 6) for r in result.history] == [1e-2, 1e-2, 1e-2, 1e-3]
    assert trainer.lr == pytest.approx(1e-4)
    for k, v in model.state_dict().items():  # best (epoch 2) weights restored
        torch.testing.assert_close(v, snapshots[1][k])


def test_fit_keeps_the_latest_validation_predictions():
    """What a callback sees in ``last_valid_predictions`` is what predicting the validation
    split with the weights of that epoch gives (Figures 2 / 10 reuse it)."""
    torch.manual_seed(0)
    model = build_model("dnn", TINY, embedding_dim=4, hidden_units=[8])
    trainer = Trainer(model, Objective(), TrainConfig(epochs=2, lr=1e-2, progress=False))
    x, y = _batch()
    batch = type("B", (), {"categorical": x.categorical, "numeric": x.numeric, "label": y,
                           "group": None})  # fmt: skip
    seen = []

    def check(record):
        fresh = trainer.predict([batch])
        seen.append(record["epoch"])
        assert (trainer.last_valid_predictions.logit == fresh.logit).all()
        assert (trainer.last_valid_predictions.label == fresh.label).all()

    assert trainer.last_valid_predictions is None
    trainer.fit(_Scripted([batch]), [batch], on_epoch_end=check)
    assert seen == [1, 2]


def test_monitor_falls_back_to_auc_when_gauc_is_undefined():
    from tf4ctr.train.trainer import monitor_value

    assert monitor_value({"auc": 0.7, "gauc": float("nan")}, "auc+gauc") == 0.7
    assert monitor_value({"auc": 0.7, "gauc": 0.6}, "auc+gauc") == pytest.approx(1.3)


@pytest.mark.parametrize("name", sorted(available_models()))
def test_cpu_prediction_in_slices_matches_whole_batches(name):
    """Trainer.predict scores a CPU batch in slices of ``cpu_forward_rows``: every model's
    logits (and encoder logits) must equal those of one forward over the whole batch, bit
    for bit, or the slice size would change results (keys treat eval_batch_size as inert)."""
    from tf4ctr.data.loader import Batch

    torch.manual_seed(0)
    model = build_model(name, TINY)
    x, y = _batch(n=3003, seed=1)
    model.train()
    with torch.no_grad():  # move batch-norm running statistics off their initial values
        model(x)
    trainer = Trainer(model, Objective(None), TrainConfig(progress=False))
    batches = [Batch(x.categorical, x.numeric, y)]
    trainer.cpu_forward_rows = 10**9
    whole = trainer.predict(batches, encoder_logits=True)
    trainer.cpu_forward_rows = 2048  # a slice and a short one, 955 rows: not a multiple of 4
    sliced = trainer.predict(batches, encoder_logits=True)
    assert whole.logit.shape == (3003,)
    for field in ("logit", "z_s", "z_c", "label"):
        a, b = getattr(whole, field), getattr(sliced, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert np.array_equal(a, b), f"{name}: {field} differs, max {np.abs(a - b).max()}"
