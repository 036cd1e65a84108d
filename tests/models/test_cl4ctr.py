"""CL4CTR: shapes and gradients, learning, the auxiliary loss's train/eval
contract, and each of its three losses against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, quick_valid_auc
from tf4ctr.errors import ConfigError
from tf4ctr.models import build_model
from tf4ctr.nn.contrastive import (
    ContrastiveModule,
    batch_features,
    contrastive_loss,
    feature_alignment_loss,
    field_uniformity_loss,
    mask_view,
)
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.types import FeatureInput

SMALL = {"embedding_dim": 8, "hidden_units": [16, 16], "cl_feedforward_dim": 16}


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum() / (a.norm() * b.norm())


def _alignment_by_hand(groups: list[list[torch.Tensor]]) -> torch.Tensor:
    total = sum(((ei - ej) ** 2).sum() for g in groups for ei in g for ej in g)
    return total / sum(len(g) ** 2 for g in groups)


def _uniformity_by_hand(groups: list[list[torch.Tensor]]) -> torch.Tensor:
    total, pairs = torch.tensor(0.0), 0
    for f, g in enumerate(groups):
        for k, h in enumerate(groups):
            if f == k:
                continue
            for ei in g:
                for ej in h:
                    total = total + _cosine(ei, ej)
                    pairs += 1
    return total / pairs


@pytest.mark.parametrize("base", ["dnn", "fm"])
def test_shapes_and_every_parameter_gets_gradient(tiny_schema, tiny_batch, base):
    torch.manual_seed(0)
    model = build_model("cl4ctr", tiny_schema, base=base, **SMALL)
    check_shapes_and_gradients(model, tiny_batch, twin=False)


def test_aux_loss_only_in_training(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    x, _ = tiny_batch
    model = build_model("cl4ctr", tiny_schema, **SMALL)
    model.train()
    aux = model(x).aux_loss
    assert aux is not None and aux.dim() == 0
    assert math.isfinite(aux.item()) and aux.item() > 0
    model.eval()
    assert model(x).aux_loss is None


def test_eval_is_deterministic_and_draws_no_random_numbers(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    x, _ = tiny_batch
    model = build_model("cl4ctr", tiny_schema, **SMALL)
    model.train()
    model(x)  # move the batch-norm statistics away from their initial values
    model.eval()
    state = torch.get_rng_state()
    first = model(x).logit
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(model(x).logit, first, rtol=0, atol=0)


def test_learns_beyond_logistic_regression(learn_data):
    # Trained with its full auxiliary loss (the objective adds aux_loss).
    auc = quick_valid_auc(
        learn_data,
        "cl4ctr",
        embedding_dim=8,
        hidden_units=[64, 64],
        cl_feedforward_dim=32,
        epochs=3,
    )
    assert auc > learn_data.lr_auc


def test_fm_base_learns_beyond_logistic_regression(learn_data):
    # alpha = 0: with FM, L_cl's embedding gradient (∝ 1/‖e‖ through the
    # encoder's LayerNorm) dwarfs FM's click gradient (∝ ‖e‖) at the small
    # initial scale, and in a few epochs FM+L_cl stays at LR level; the
    # alignment and uniformity terms are kept.
    auc = quick_valid_auc(learn_data, "cl4ctr", base="fm", embedding_dim=8, alpha=0.0, epochs=3)
    assert auc > learn_data.lr_auc


def test_contrastive_loss_by_hand():
    h1 = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    h2 = torch.tensor([[0.5, 2.0], [1.0, 1.0], [3.0, 0.0]])
    by_hand = sum(sum((h1[i, k] - h2[i, k]) ** 2 for k in range(2)) for i in range(3)) / 3
    torch.testing.assert_close(contrastive_loss(h1, h2), by_hand)


def test_contrastive_module_wiring_by_hand():
    torch.manual_seed(0)
    module = ContrastiveModule(3, 4, mask_ratio=0.5, feedforward_dim=8)
    module.eval()  # no encoder dropout, so only the masks are random
    emb = torch.randn(5, 3, 4)
    torch.manual_seed(1)
    loss = module(emb)
    torch.manual_seed(1)
    view1, view2 = mask_view(emb, 0.5), mask_view(emb, 0.5)
    h1 = module.project1(module.encoder(view1).flatten(1))
    h2 = module.project2(module.encoder(view2).flatten(1))
    torch.testing.assert_close(loss, ((h1 - h2) ** 2).sum(1).mean())


def test_masks():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(4, 3, 5) + 10.0  # no entry is zero before masking
    torch.testing.assert_close(mask_view(emb, 0.0, generator=g), emb)

    big = torch.ones(200, 10, 10)
    dropped = (mask_view(big, 0.3, "random", generator=g) == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.02

    feature = mask_view(emb, 0.5, "feature", generator=g)
    zero_fields = (feature == 0).all(dim=2)
    kept_fields = (feature == emb).all(dim=2)
    assert bool((zero_fields | kept_fields).all()) and bool(zero_fields.any())

    dimension = mask_view(emb, 0.5, "dimension", generator=g)
    zero_dims = (dimension == 0).all(dim=1)
    kept_dims = (dimension == emb).all(dim=1)
    assert bool((zero_dims | kept_dims).all()) and bool(zero_dims.any())

    with pytest.raises(ValueError, match="mask_type"):
        mask_view(emb, 0.5, "column")


def _tiny_table() -> tuple[FeatureEmbedding, FeatureInput]:
    torch.manual_seed(0)
    table = FeatureEmbedding([3, 4, 2], 1, 3, init_std=1.0)
    # field 0 uses rows {0, 2}; field 1 rows {1, 3} (+3); field 2 row {0} (+7)
    cat = torch.tensor([[0, 1, 0], [2, 1, 0], [0, 3, 0]])
    return table, FeatureInput(cat, torch.rand(3, 1))


def test_batch_features_are_the_distinct_rows_per_field():
    table, x = _tiny_table()
    vectors, fields = batch_features(table, x)
    assert fields.tolist() == [0, 0, 1, 1, 2, 3]
    expected = torch.cat([table.weight[[0, 2, 4, 6, 7]], table.numeric_weight])
    torch.testing.assert_close(vectors, expected)


def test_feature_alignment_by_hand():
    table, x = _tiny_table()
    w = table.weight
    groups = [[w[0], w[2]], [w[4], w[6]], [w[7]], [table.numeric_weight[0]]]
    vectors, fields = batch_features(table, x)
    loss = feature_alignment_loss(vectors, fields, table.num_fields)
    torch.testing.assert_close(loss, _alignment_by_hand(groups))


def test_field_uniformity_by_hand():
    table, x = _tiny_table()
    w = table.weight
    groups = [[w[0], w[2]], [w[4], w[6]], [w[7]], [table.numeric_weight[0]]]
    vectors, fields = batch_features(table, x)
    loss = field_uniformity_loss(vectors, fields, table.num_fields)
    torch.testing.assert_close(loss, _uniformity_by_hand(groups))
    one_field = torch.zeros(3, dtype=torch.long)
    assert field_uniformity_loss(torch.randn(3, 4), one_field, 1).abs().item() < 1e-6


def test_model_aux_loss_by_hand_and_only_batch_rows_count():
    schema = type("Schema", (), {"vocab_sizes": [3, 4, 2], "numeric": ("n",)})()
    model = build_model("cl4ctr", schema, alpha=0.0, beta=0.3, gamma=0.7, **SMALL)
    model.train()
    _, x = _tiny_table()
    w, num = model.embedding.weight, model.embedding.numeric_weight
    groups = [[w[0], w[2]], [w[4], w[6]], [w[7]], [num[0]]]
    expected = 0.3 * _alignment_by_hand(groups) + 0.7 * _uniformity_by_hand(groups)
    torch.testing.assert_close(model(x).aux_loss, expected)
    with torch.no_grad():
        w[1].mul_(100.0)  # row 1 (field 0) is not in the batch
    torch.testing.assert_close(model(x).aux_loss, expected)


def test_fm_base_matches_formula(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("cl4ctr", tiny_schema, base="fm", embedding_dim=4)
    model.eval()
    x, _ = tiny_batch
    emb = model.embedding(x)
    first = model.first_order.weights(x)[:, :, 0].sum(1) + model.first_order.bias
    fields = emb.size(1)
    pairwise = torch.stack(
        [
            sum((emb[b, i] * emb[b, j]).sum() for i in range(fields) for j in range(i + 1, fields))
            for b in range(emb.size(0))
        ]
    )
    torch.testing.assert_close(model(x).logit, first + pairwise)


def test_rejects_bad_settings(tiny_schema):
    for bad in ({"base": "deepfm"}, {"alpha": -1.0}, {"mask_ratio": 1.0}, {"mask_type": "x"}):
        with pytest.raises(ConfigError):
            build_model("cl4ctr", tiny_schema, **bad)
