"""GDCN: the gated cross layer against its formula, both structures, a hand parameter
count, gradients, learning a pure interaction, and the gated cross network as a
TF4CTR encoder."""

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, count_params
from tests.models.xor import xor_auc, xor_data
from tf4ctr.errors import ConfigError
from tf4ctr.framework import Objective, TwinFocusLoss, TwinModel
from tf4ctr.models import build_model
from tf4ctr.models.dcnv2 import StackedDCNv2
from tf4ctr.nn.gdcn import GatedCrossEncoder, GatedCrossNetwork

SMALL = dict(embedding_dim=4, hidden_units=[16, 12], num_cross_layers=2)


def test_gated_cross_layers_match_the_formula():
    torch.manual_seed(0)
    net = GatedCrossNetwork(5, num_layers=2).double()
    x0 = torch.randn(3, 5, dtype=torch.float64)
    rows = []
    for n in range(3):
        x = x0[n]
        for cross, gate in zip(net.cross, net.gates, strict=True):
            w, b, wg = cross.weight, cross.bias, gate.weight
            x = x0[n] * (w @ x + b) * torch.sigmoid(wg @ x) + x
        rows.append(x)
    assert torch.allclose(net(x0), torch.stack(rows))
    assert all(gate.bias is None for gate in net.gates)  # the gate has no bias (Eq. 1)


@pytest.mark.parametrize(
    "extra, twin",
    [({}, True), ({"model_structure": "stacked"}, False)],
    ids=["parallel", "stacked"],
)
def test_shapes_and_every_parameter_gets_gradient(tiny_schema, tiny_batch, extra, twin):
    torch.manual_seed(0)
    model = build_model("gdcn", tiny_schema, **SMALL, **extra)
    check_shapes_and_gradients(model, tiny_batch, twin=twin)


def test_parallel_is_a_twin_model_and_stacked_is_not(tiny_schema, tiny_batch):
    parallel = build_model("gdcn", tiny_schema, **SMALL)
    assert isinstance(parallel, TwinModel)
    assert isinstance(parallel.simple_encoder, GatedCrossEncoder)
    stacked = build_model("gdcn", tiny_schema, model_structure="stacked", **SMALL)
    assert isinstance(stacked, StackedDCNv2) and isinstance(stacked.cross, GatedCrossNetwork)
    out = stacked(tiny_batch[0])
    assert out.z_s is None and out.z_c is None
    with pytest.raises(ValueError, match="TF Loss"):
        Objective(TwinFocusLoss())(stacked, out, tiny_batch[1])


def test_parallel_parameter_count_by_hand(tiny_schema):
    d, layers, h1, h2 = 4, 2, 16, 12
    width = (len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)) * d  # 6 fields × 4 = 24
    embedding = sum(tiny_schema.vocab_sizes) * d + len(tiny_schema.numeric) * d
    cross = layers * ((width * width + width) + width * width)  # W_l, b_l and the gate's W_g,l
    cross_head = width + 1  # z_s
    dnn = (width * h1 + h1 + 2 * h1) + (h1 * h2 + h2 + 2 * h2)  # linear + batch-norm scale/shift
    dnn_head = h2 + 1  # z_c
    concat_fusion = width + h2 + 1  # GDCN-P's final layer over [cross ‖ DNN]
    expected = embedding + cross + cross_head + dnn + dnn_head + concat_fusion
    model = build_model("gdcn", tiny_schema, **SMALL)
    # 256 + 2352 + 25 + 660 + 13 + 37
    assert count_params(model) == expected == 3343


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_learns_a_pure_interaction_that_logistic_regression_cannot(structure):
    data = xor_data()
    torch.manual_seed(0)
    model = build_model("gdcn", data.schema, **SMALL, dropout=0.0, model_structure=structure)
    assert data.lr_auc < 0.6
    assert xor_auc(model, data, epochs=5) > 0.95


def test_the_gated_cross_network_alone_learns_the_interaction():
    # Beside an LR, which cannot, the gated cross network is the only side that can.
    data = xor_data()
    torch.manual_seed(0)
    model = build_model(
        "tf4ctr",
        data.schema,
        embedding_dim=4,
        ssem="share",
        fusion="sum",
        simple_encoder={"name": "gated_cross", "num_layers": 2},
        complex_encoder="lr",
    )
    assert xor_auc(model, data, epochs=5) > 0.95


@pytest.mark.parametrize("ssem", ["share", "ser", "gm", "mmoe"])
def test_gated_cross_is_a_tf4ctr_complex_encoder_by_configuration(tiny_schema, tiny_batch, ssem):
    torch.manual_seed(0)
    model = build_model(
        "tf4ctr",
        tiny_schema,
        embedding_dim=4,
        ssem=ssem,
        simple_hidden_units=[8],
        complex_encoder={"name": "gated_cross", "num_layers": 2},
    )
    assert isinstance(model.complex_encoder, GatedCrossEncoder)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_bad_settings_are_config_errors(tiny_schema):
    with pytest.raises(ConfigError, match="model_structure"):
        build_model("gdcn", tiny_schema, model_structure="serial")
    with pytest.raises(ConfigError, match="num_cross_layers"):
        build_model("gdcn", tiny_schema, num_cross_layers=0)
