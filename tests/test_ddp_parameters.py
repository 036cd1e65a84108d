"""Every parameter of every registered model gets a gradient under every loss, so DDP (which
refuses a parameter that gets none, tests/test_distributed.py) trains any of them.

The cheap in-process proxy for DDP's check: one forward and backward through the Trainer's
training module leaves no parameter that requires a gradient without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from tf4ctr.config import LossConfig, TrainConfig
from tf4ctr.models import build_model
from tf4ctr.models.registry import available_models
from tf4ctr.nn import FeatureEmbedding, FeatureInput
from tf4ctr.run import build_objective
from tf4ctr.train import Trainer


@dataclass
class Schema:
    vocab_sizes: list
    numeric: tuple = ()


LOSSES = ("bce", "tf", "focal", "rce")
TWIN_ONLY = "TF Loss needs a model with two encoder logits"


def _batch(schema: Schema, n: int = 32):
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in schema.vocab_sizes], 1)
    num = torch.rand(n, len(schema.numeric), generator=g)
    return FeatureInput(cat, num), (torch.rand(n, generator=g) > 0.5).float()


def _without_gradient(
    name: str, schema: Schema, loss: str, l2: float, **hparams
) -> list[str] | None:
    torch.manual_seed(0)
    model = build_model(name, schema, **hparams)
    objective = build_objective(LossConfig(name=loss, embedding_l2=l2))
    trainer = Trainer(model, objective, TrainConfig(progress=False))
    x, y = _batch(schema)
    trainer.train_model.train()
    out = trainer.train_model(x)
    try:
        parts = objective(model, out, y)
    except ValueError as exc:  # TF loss on a single-logit model: refused, nothing to train
        assert TWIN_ONLY in str(exc)
        return None
    parts.total.backward()
    return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("name", available_models())
def test_every_parameter_gets_a_gradient_under_every_loss(name):
    for schema in (Schema([7, 12, 5, 30, 9]), Schema([7, 12, 5, 30, 9], ("n1",))):
        for loss in LOSSES:
            for l2 in (0.0, 0.1):
                dead = _without_gradient(name, schema, loss, l2)
                where = f"{name}, loss {loss}, embedding_l2 {l2}, {len(schema.numeric)} numeric"
                assert not dead, f"{where}: parameters without gradient: {dead}"


@pytest.mark.parametrize(
    "hparams",
    [
        {"fusion": "cf", "simple_encoder": "fm"},  # FM's first-order part feeds z_s only
        {"fusion": "moef", "complex_encoder": "cin", "simple_encoder": "crossnet"},
        {"fusion": "cf", "simple_encoder": "lr"},  # LR: its hidden output is its logit
        {"fusion": "vf"},
    ],
    ids=["cf-fm", "moef-cin-crossnet", "cf-lr", "vf"],
)
def test_twin_fusions_that_skip_the_encoder_logits_leave_no_parameter_without_gradient(hparams):
    schema = Schema([7, 12, 5], ("n1",))
    for loss in LOSSES:
        dead = _without_gradient("tf4ctr", schema, loss, 0.0, **hparams)
        assert not dead, f"tf4ctr {hparams}, loss {loss}: parameters without gradient: {dead}"


def test_a_table_without_numeric_fields_has_no_numeric_parameter_and_loads_old_runs():
    table = FeatureEmbedding([3, 4], 0, 8)
    assert [n for n, _ in table.named_parameters()] == ["weight"]
    assert table.numeric_weight.shape == (0, 8)  # still there for its readers (fold, CL4CTR)
    # a run written when the empty table was a parameter stored it: it loads, strictly
    old = {"weight": torch.randn(7, 8), "numeric_weight": torch.empty(0, 8)}
    table.load_state_dict(old)
    assert torch.equal(table.weight, old["weight"]) and "numeric_weight" not in table.state_dict()
