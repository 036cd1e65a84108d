"""EDCN: shapes and gradients, learning, and its three blocks checked by hand."""

from __future__ import annotations

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.errors import ConfigError
from tf4ctr.framework import Objective
from tf4ctr.models import build_model
from tf4ctr.nn.edcn import BRIDGE_TYPES, BridgeModule, CrossLayer, RegulationModule

SMALL = {"embedding_dim": 8, "num_cross_layers": 2}


@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_shapes_and_every_parameter_gets_gradient(tiny_schema, tiny_batch, bridge_type):
    # twin=True: the z_s / z_c heads are fed only by TF loss.
    torch.manual_seed(0)
    model = build_model("edcn", tiny_schema, bridge_type=bridge_type, **SMALL)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_twin_heads_get_no_gradient_from_log_loss(tiny_schema, tiny_batch):
    # The documented consequence of heads that exist only for TF loss.
    x, y = tiny_batch
    model = build_model("edcn", tiny_schema, **SMALL)
    Objective()(model, model(x), y).total.backward()
    assert model.simple_head.weight.grad is None
    assert model.complex_head.weight.grad is None
    assert model.head.weight.grad is not None


def test_learns_beyond_logistic_regression(learn_data):
    auc = quick_valid_auc(learn_data, "edcn", embedding_dim=8, epochs=4)
    assert auc > learn_data.lr_auc


def test_cross_layer_matches_formula():
    torch.manual_seed(0)
    layer = CrossLayer(3)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x0, xl = torch.randn(2, 3), torch.randn(2, 3)
    w, b = layer.weight[:, 0], layer.bias
    expected = torch.stack(
        [x0[i] * sum(xl[i, k] * w[k] for k in range(3)) + b + xl[i] for i in range(2)]
    )
    torch.testing.assert_close(layer(x0, xl), expected)


def test_bridges_match_formulas():
    torch.manual_seed(0)
    x, h = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(BridgeModule(5, "hadamard_product")(x, h), x * h)
    torch.testing.assert_close(BridgeModule(5, "pointwise_addition")(x, h), x + h)

    concat = BridgeModule(5, "concatenation")
    linear = concat.fuse[0]
    expected = torch.relu(torch.cat([x, h], 1) @ linear.weight.T + linear.bias)
    torch.testing.assert_close(concat(x, h), expected)

    attention = BridgeModule(5, "attention_pooling")

    def weights(net, v):
        first, _, second, _ = net
        return torch.softmax(torch.relu(v @ first.weight.T + first.bias) @ second.weight.T, dim=1)

    expected = weights(attention.attend_cross, x) * x + weights(attention.attend_deep, h) * h
    torch.testing.assert_close(attention(x, h), expected)

    with pytest.raises(ValueError, match="bridge_type"):
        BridgeModule(5, "product")


def test_regulation_gates_fields():
    num_fields, dim, tau = 3, 2, 0.5
    module = RegulationModule(num_fields, dim, temperature=tau, batch_norm=False)
    with torch.no_grad():
        module.cross_scores.copy_(torch.tensor([1.0, 2.0, 0.0]))
        module.deep_scores.copy_(torch.tensor([0.0, 0.0, 3.0]))
    x = torch.arange(12, dtype=torch.float32).view(2, num_fields * dim)
    cross, deep = module(x)

    def gate(scores):
        exps = [torch.exp(s / tau) for s in scores]
        return [e / sum(exps) for e in exps]

    for out, scores in ((cross, [1.0, 2.0, 0.0]), (deep, [0.0, 0.0, 3.0])):
        g = gate(torch.tensor(scores))
        expected = torch.cat([x[:, f * dim : (f + 1) * dim] * g[f] for f in range(num_fields)], 1)
        torch.testing.assert_close(out, expected)


def test_forward_is_the_documented_composition(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("edcn", tiny_schema, **SMALL, dropout=0.0, batch_norm=False)
    model.eval()
    x, _ = tiny_batch
    f = model.embedding(x).flatten(1)
    x0 = None
    for layer in range(2):
        xt, ht = model.regulations[layer](f)
        x0 = xt if x0 is None else x0
        xl = model.cross_layers[layer](x0, xt)
        hl = torch.relu(model.deep_layers[layer].net[0](ht))
        f = xl * hl
    expected = model.head(torch.cat([xl, hl, f], 1)).squeeze(-1)
    out = model(x)
    torch.testing.assert_close(out.logit, expected)
    torch.testing.assert_close(out.z_s, model.simple_head(xl).squeeze(-1))
    torch.testing.assert_close(out.z_c, model.complex_head(hl).squeeze(-1))


def test_parameter_count_by_hand(tiny_schema):
    d, layers = 8, 2
    num_fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)
    width = num_fields * d
    embedding = sum(tiny_schema.vocab_sizes) * d + len(tiny_schema.numeric) * d
    regulation = 2 * num_fields + 2 * (2 * width)  # two score vectors, two BNs (γ, β)
    cross = width + width  # w, b
    deep = width * width + width  # Linear(D, D)
    head = 3 * width + 1
    twin_heads = 2 * (width + 1)
    expected = embedding + layers * (regulation + cross + deep) + head + twin_heads
    model = build_model("edcn", tiny_schema, embedding_dim=d, num_cross_layers=layers)
    assert count_params(model) == expected


def test_rejects_bad_settings(tiny_schema):
    with pytest.raises(ConfigError, match="num_cross_layers"):
        build_model("edcn", tiny_schema, num_cross_layers=0)
    with pytest.raises(ConfigError, match="temperature"):
        build_model("edcn", tiny_schema, temperature=0.0)
