"""DCN: the cross layer against its formula written out, the concat fusion,
gradients (TF Loss included) and learning."""

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.framework.fusion import ConcatFusion
from tf4ctr.models import build_model
from tf4ctr.nn.cross import CrossNet


def test_one_cross_layer_matches_the_formula_per_sample():
    torch.manual_seed(0)
    layer = CrossNet(5, num_layers=1)
    with torch.no_grad():
        layer.bias.normal_()
    x0 = torch.randn(4, 5, dtype=torch.float64)
    w = layer.weight[0].detach().double()
    b = layer.bias[0].detach().double()
    expected = torch.empty_like(x0)
    for n in range(4):
        s = sum(x0[n, k] * w[k] for k in range(5))  # x0ᵀ w, a scalar
        for k in range(5):
            expected[n, k] = x0[n, k] * s + b[k] + x0[n, k]
    assert torch.allclose(layer.double()(x0), expected)


def test_stacked_cross_layers_reuse_x0():
    torch.manual_seed(1)
    net = CrossNet(3, num_layers=2).double()
    with torch.no_grad():
        net.bias.normal_()
    x0 = torch.randn(2, 3, dtype=torch.float64)
    x1 = x0 * (x0 @ net.weight[0]).unsqueeze(-1) + net.bias[0] + x0
    x2 = x0 * (x1 @ net.weight[1]).unsqueeze(-1) + net.bias[1] + x1
    assert torch.allclose(net(x0), x2)


def test_dcn_fuses_cross_and_deep_outputs_in_one_linear_layer(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("dcn", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    assert isinstance(model.fusion, ConcatFusion)
    model.eval()
    x, _ = tiny_batch
    emb, _ = model.ssem(x)
    cross = model.simple_encoder.net(emb.flatten(1))
    deep = model.complex_encoder.mlp(emb.flatten(1))
    expected = model.fusion.linear(torch.cat([cross, deep], dim=-1)).squeeze(-1)
    assert torch.allclose(model(x).logit, expected, atol=1e-6)


def test_dcn_parameter_count_by_hand(tiny_schema):
    d, layers, h1 = 8, 2, 16
    vocab = sum(tiny_schema.vocab_sizes)  # 63
    width = (len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)) * d  # 48
    embedding = vocab * d + 1 * d
    cross = layers * (width + width)  # a weight vector and a bias per layer
    cross_head = width + 1
    deep = width * h1 + h1 + 2 * h1  # linear, batch-norm scale and shift
    deep_head = h1 + 1
    concat_fusion = width + h1 + 1
    model = build_model(
        "dcn", tiny_schema, embedding_dim=d, num_cross_layers=layers, hidden_units=[h1]
    )
    assert count_params(model) == (
        embedding + cross + cross_head + deep + deep_head + concat_fusion
    )


def test_dcn_shapes_and_gradients_with_tf_loss(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("dcn", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_dcn_learns_interactions(learn_data):
    auc = quick_valid_auc(learn_data, "dcn", embedding_dim=8, hidden_units=[64, 64])
    assert auc > learn_data.lr_auc
