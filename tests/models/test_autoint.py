"""AutoInt+: shapes, gradients (TF Loss included), the interacting layer by hand,
and it learns interactions."""

import math

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.models import build_model
from tf4ctr.nn.attention import InteractingLayer

SMALL = {
    "embedding_dim": 8,
    "attention_layers": 2,
    "num_heads": 2,
    "attention_dim": 4,
    "hidden_units": [16, 16],
}


def test_autoint_shapes_and_gradients_with_tf_loss(tiny_schema, tiny_batch):
    model = build_model("autoint", tiny_schema, **SMALL)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_autoint_plus_alias_and_layer_norm(tiny_schema, tiny_batch):
    model = build_model("autoint_plus", tiny_schema, **SMALL, layer_norm=True, use_scale=False)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_autoint_parameter_count_by_hand(tiny_schema):
    d, heads, d_att, h1, h2 = 8, 2, 4, 16, 16
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    embedding = sum(tiny_schema.vocab_sizes) * d + 1 * d
    width = heads * d_att  # 8 == d, so no layer needs a residual projection
    layer1 = 3 * d * width  # W_Q, W_K, W_V, no biases
    layer2 = 3 * width * width
    attention_head = fields * width + 1
    dnn = (fields * d * h1 + h1 + 2 * h1) + (h1 * h2 + h2 + 2 * h2) + (h2 + 1)
    model = build_model("autoint", tiny_schema, **SMALL)
    assert count_params(model) == embedding + layer1 + layer2 + attention_head + dnn


def test_one_head_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    layer = InteractingLayer(3, 2, 1, use_residual=False, use_scale=True)
    x = torch.randn(2, 4, 3)
    wq, wk, wv = (w.detach() for w in (layer.query.weight, layer.key.weight, layer.value.weight))
    expected = torch.empty(2, 4, 2)
    for b in range(2):
        for m in range(4):
            scores = [float(wq @ x[b, m] @ (wk @ x[b, k])) / math.sqrt(2) for k in range(4)]
            weights = [math.exp(s) for s in scores]
            total = sum(weights)
            mixed = sum(w / total * (wv @ x[b, k]) for k, w in enumerate(weights))
            expected[b, m] = torch.relu(mixed)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_two_heads_with_residual_projection_and_without_scale():
    torch.manual_seed(1)
    layer = InteractingLayer(5, 3, 2, use_residual=True, use_scale=False)
    assert layer.residual is not None  # 5 != 2 * 3
    x = torch.randn(3, 4, 5)
    layer.requires_grad_(False)
    heads = []
    for h in range(2):
        rows = slice(3 * h, 3 * h + 3)
        q = x @ layer.query.weight[rows].T
        k = x @ layer.key.weight[rows].T
        v = x @ layer.value.weight[rows].T
        heads.append(torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v)  # no 1/sqrt(d')
    expected = torch.relu(torch.cat(heads, dim=-1) + x @ layer.residual.weight.T)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_identity_residual_when_widths_match():
    torch.manual_seed(2)
    layer = InteractingLayer(6, 3, 2, use_residual=True)
    assert layer.residual is None  # 6 == 2 * 3: the skip is the input itself
    x = torch.randn(2, 3, 6)
    with torch.no_grad():
        q = layer.query(x).view(2, 3, 2, 3).transpose(1, 2)
        k = layer.key(x).view(2, 3, 2, 3).transpose(1, 2)
        v = layer.value(x).view(2, 3, 2, 3).transpose(1, 2)
        mixed = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(3), dim=-1) @ v
        mixed = mixed.transpose(1, 2).reshape(2, 3, 6)
        torch.testing.assert_close(layer(x), torch.relu(mixed + x), rtol=1e-5, atol=1e-6)


def test_autoint_learns_interactions(learn_data):
    auc = quick_valid_auc(
        learn_data,
        "autoint",
        epochs=3,
        embedding_dim=8,
        attention_layers=2,
        num_heads=2,
        attention_dim=8,
        hidden_units=[64, 64],
    )
    print(f"autoint valid AUC {auc:.4f} vs LR {learn_data.lr_auc:.4f}")
    assert auc > learn_data.lr_auc
