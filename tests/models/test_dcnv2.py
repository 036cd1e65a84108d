"""DCN-V2: full-rank and low-rank-mixture cross layers against their formulas,
both structures, a hand parameter count, gradients and learning."""

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.errors import ConfigError
from tf4ctr.framework import Objective, TwinFocusLoss, TwinModel
from tf4ctr.models import build_model
from tf4ctr.models.dcnv2 import StackedDCNv2
from tf4ctr.nn.cross import CrossNetMix, CrossNetV2

SMALL = dict(embedding_dim=8, hidden_units=[16, 16], num_cross_layers=2)


def test_one_full_rank_cross_layer_matches_the_formula():
    torch.manual_seed(0)
    net = CrossNetV2(5, num_layers=1).double()
    with torch.no_grad():
        net.layers[0].bias.normal_()
    w, b = net.layers[0].weight, net.layers[0].bias
    x0 = torch.randn(3, 5, dtype=torch.float64)
    expected = torch.stack([x0[n] * (w @ x0[n] + b) + x0[n] for n in range(3)])
    assert torch.allclose(net(x0), expected)


def test_one_low_rank_mixture_layer_matches_the_formula():
    torch.manual_seed(0)
    num_experts, dim = 3, 6
    net = CrossNetMix(dim, num_layers=1, low_rank=2, num_experts=num_experts).double()
    with torch.no_grad():
        net.bias.normal_()
        net.gates[0].bias.normal_()
    x0 = torch.randn(4, dim, dtype=torch.float64)
    gate = net.gates[0]
    rows = []
    for n in range(4):
        x = x0[n]
        g = torch.softmax(gate.weight @ x + gate.bias, dim=0)
        mixed = torch.zeros(dim, dtype=torch.float64)
        for i in range(num_experts):
            u, v, c = net.u[0, i], net.v[0, i], net.c[0, i]  # [D, r], [D, r], [r, r]
            expert = x0[n] * (u @ torch.tanh(c @ torch.tanh(v.T @ x)) + net.bias[0])
            mixed = mixed + g[i] * expert
        rows.append(mixed + x)
    assert torch.allclose(net(x0), torch.stack(rows))


def test_parallel_full_rank_parameter_count_by_hand(tiny_schema):
    d, layers, h1, h2 = 8, 2, 16, 12
    vocab = sum(tiny_schema.vocab_sizes)  # 63
    width = (len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)) * d  # 6 fields × 8 = 48
    embedding = vocab * d + 1 * d
    cross = layers * (width * width + width)  # W_l and b_l per layer
    cross_head = width + 1  # z_s
    layer1 = width * h1 + h1 + 2 * h1  # linear, batch-norm scale and shift
    layer2 = h1 * h2 + h2 + 2 * h2
    dnn_head = h2 + 1  # z_c
    concat_fusion = width + h2 + 1  # the final layer over [x_L ‖ h_deep]
    expected = embedding + cross + cross_head + layer1 + layer2 + dnn_head + concat_fusion
    model = build_model(
        "dcnv2", tiny_schema, embedding_dim=d, num_cross_layers=layers, hidden_units=[h1, h2]
    )
    # 512 + 4704 + 49 + 816 + 228 + 13 + 61
    assert count_params(model) == expected == 6383


def test_parallel_is_a_twin_model_and_stacked_is_not(tiny_schema, tiny_batch):
    assert isinstance(build_model("dcnv2", tiny_schema, **SMALL), TwinModel)
    stacked = build_model("dcnv2", tiny_schema, model_structure="stacked", **SMALL)
    assert isinstance(stacked, StackedDCNv2)
    out = stacked(tiny_batch[0])
    assert out.z_s is None and out.z_c is None
    with pytest.raises(ValueError, match="TF Loss"):
        Objective(TwinFocusLoss())(stacked, out, tiny_batch[1])


def test_low_rank_mixture_replaces_the_full_rank_cross(tiny_schema):
    par = build_model("dcnv2", tiny_schema, use_low_rank_mixture=True, **SMALL)
    assert isinstance(par.simple_encoder.net, CrossNetMix)
    st = build_model(
        "dcnv2", tiny_schema, model_structure="stacked", use_low_rank_mixture=True, **SMALL
    )
    assert isinstance(st.cross, CrossNetMix)


def test_unknown_structure_is_a_config_error(tiny_schema):
    with pytest.raises(ConfigError, match="model_structure"):
        build_model("dcnv2", tiny_schema, model_structure="serial")


@pytest.mark.parametrize(
    "extra, twin",
    [
        ({}, True),
        ({"use_low_rank_mixture": True, "low_rank": 4, "num_experts": 3}, True),
        ({"model_structure": "stacked"}, False),
        ({"model_structure": "stacked", "use_low_rank_mixture": True, "low_rank": 4}, False),
    ],
)
def test_dcnv2_shapes_and_gradients(tiny_schema, tiny_batch, extra, twin):
    torch.manual_seed(0)
    model = build_model("dcnv2", tiny_schema, **SMALL, **extra)
    check_shapes_and_gradients(model, tiny_batch, twin=twin)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"model_structure": "stacked"},
        {"use_low_rank_mixture": True, "low_rank": 8, "num_experts": 2, "num_cross_layers": 2},
    ],
    ids=["parallel", "stacked", "parallel-mixture"],
)
def test_dcnv2_learns_interactions(learn_data, extra):
    auc = quick_valid_auc(learn_data, "dcnv2", embedding_dim=8, hidden_units=[64, 64], **extra)
    assert auc > learn_data.lr_auc
