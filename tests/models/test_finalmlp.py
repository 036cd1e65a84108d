"""FinalMLP: the gate and the bilinear fusion against their formulas, context fields by
name and by position, hand parameter counts (BARS's own included), gradients, learning
a pure interaction, and its streams as TF4CTR's encoders."""

import pytest
import torch

from tests.models.bars_frappe import FRAPPE_BARS_VOCAB, named_schema
from tests.models.conftest import check_shapes_and_gradients, count_params
from tests.models.xor import xor_auc, xor_data
from tf4ctr.data.encoded import FeatureSchema, FieldInfo
from tf4ctr.errors import ConfigError
from tf4ctr.framework import Objective, TwinFocusLoss, TwinModel
from tf4ctr.models import build_model
from tf4ctr.models.finalmlp import BilinearStreamFusion
from tf4ctr.nn import FeatureInput
from tf4ctr.nn.encoder import EncoderContext
from tf4ctr.nn.finalmlp import FeatureSelectionGate, GatedMLPEncoder

SMALL = dict(
    embedding_dim=4,
    mlp1_hidden_units=[8],
    mlp2_hidden_units=[6],
    fs_hidden_units=[5],
    num_heads=2,
)


def check_twin_gradients(model, batch) -> None:
    """check_shapes_and_gradients(twin=True), except that a context table's numeric table is
    allowed no gradient: it covers vocabulary fields only, so it has zero rows to reach."""
    own_tables = [
        m for m in model.modules() if isinstance(m, FeatureSelectionGate) and m.context is not None
    ]
    if not own_tables:
        check_shapes_and_gradients(model, batch, twin=True)
        return
    x, y = batch
    model.train()
    out = model(x)
    assert out.logit.shape == out.z_s.shape == out.z_c.shape == y.shape
    Objective(TwinFocusLoss())(model, out, y).total.backward()
    dead = [n for n, p in model.named_parameters() if p.numel() and not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"
    empty = [n for n, p in model.named_parameters() if not p.numel()]
    assert all(n.endswith("gate.context.numeric_weight") for n in empty), empty


@pytest.mark.parametrize(
    "extra",
    [{}, {"fs1_context": [0], "fs2_context": [1, 3]}, {"feature_selection": False}],
    ids=["learned-context", "field-context", "no-gate"],
)
def test_shapes_and_every_parameter_gets_gradient(tiny_schema, tiny_batch, extra):
    torch.manual_seed(0)
    model = build_model("finalmlp", tiny_schema, **SMALL, **extra)
    assert isinstance(model, TwinModel) and isinstance(model.fusion, BilinearStreamFusion)
    check_twin_gradients(model, tiny_batch)


def test_parameter_count_by_hand(tiny_schema):
    d, h1, h2, fs, heads = 4, 8, 6, 5, 2
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    width = fields * d  # 24
    embedding = sum(tiny_schema.vocab_sizes) * d + len(tiny_schema.numeric) * d
    gate_mlp = (d * fs + fs) + (fs * width + width)  # context → [fs] → F·d
    stream1 = 7 * d + gate_mlp + (width * h1 + h1 + 2 * h1) + (h1 + 1)  # own table of field 0
    stream2 = d + gate_mlp + (width * h2 + h2 + 2 * h2) + (h2 + 1)  # learned context vector
    bilinear = heads * (h1 // heads) * (h2 // heads)
    expected = embedding + stream1 + stream2 + bilinear
    model = build_model("finalmlp", tiny_schema, fs1_context=[0], **SMALL)
    # 256 + (28 + 169 + 216 + 9) + (4 + 169 + 162 + 7) + 24
    assert count_params(model) == expected == 1044


def test_bars_frappe_setting_has_bars_parameter_count():
    # BARS's log of FinalMLP_frappe_x1_004_e1ab402f: "Total number of parameters: 253392".
    model = build_model(
        "finalmlp", named_schema(FRAPPE_BARS_VOCAB), fs1_context=["user"], fs2_context=["item"]
    )
    assert count_params(model) == 253_392


def test_bilinear_fusion_matches_the_formula():
    torch.manual_seed(0)
    heads, ds, dc = 2, 4, 6
    fusion = BilinearStreamFusion(ds, dc, heads).double()
    h_s, h_c = torch.randn(3, ds, dtype=torch.float64), torch.randn(3, dc, dtype=torch.float64)
    z_s, z_c = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    expected = []
    for n in range(3):
        total = z_s[n] + z_c[n]
        for k in range(heads):
            a = h_s[n, k * ds // heads : (k + 1) * ds // heads]
            b = h_c[n, k * dc // heads : (k + 1) * dc // heads]
            total = total + a @ fusion.weight[k] @ b
        expected.append(total)
    assert torch.allclose(fusion(h_s, h_c, z_s, z_c), torch.stack(expected))
    with pytest.raises(ValueError, match="num_heads"):
        BilinearStreamFusion(4, 6, 4)


def test_gate_and_stream_match_the_formula(tiny_batch):
    torch.manual_seed(0)
    x, _ = tiny_batch
    ctx_dim, width = 3, 6 * 3
    gate = FeatureSelectionGate(width, ctx_dim, [5], context_fields=[2], vocab_sizes=[7, 12, 5])
    context = gate.context.weight[x.categorical[:, 2]]  # field 2's own table, one row per id
    expected = 2 * torch.sigmoid(gate.mlp(context))
    torch.testing.assert_close(gate(x), expected)

    learned = FeatureSelectionGate(width, ctx_dim, [5], vocab_sizes=[7, 12, 5])
    torch.testing.assert_close(learned(x), 2 * torch.sigmoid(learned.mlp(learned.vector)))
    assert learned(x).shape == (1, width)  # one gate for every sample

    enc = GatedMLPEncoder(
        EncoderContext(6, 3, (7, 12, 5, 30, 9), 1), hidden_units=[4], context_fields=[0]
    )
    emb = torch.randn(64, 6, 3)
    hidden, logit = enc(emb, x)
    expected_hidden = enc.mlp(emb.flatten(1) * enc.gate(x))
    torch.testing.assert_close(hidden, expected_hidden)
    torch.testing.assert_close(logit, enc.head(expected_hidden).squeeze(-1))


def test_context_fields_by_name_and_after_a_sequence_field():
    schema = FeatureSchema(
        (
            FieldInfo("history", "sequence", 9, width=3),
            FieldInfo("user", "categorical", 5),
            FieldInfo("price", "numeric", 0),
        )
    )
    model = build_model("finalmlp", schema, fs1_context=["user"], fs2_context="history", **SMALL)
    gate1, gate2 = model.simple_encoder.gate, model.complex_encoder.gate
    assert gate1.columns.tolist() == [3]  # the user's column comes after the sequence's three
    assert gate2.columns.tolist() == [0, 1, 2]
    x = FeatureInput(torch.tensor([[2, 3, 0, 4], [5, 0, 0, 2]]), torch.rand(2, 1))
    model.eval()
    assert model(x).logit.shape == (2,)


def test_bad_context_is_a_config_error(tiny_schema):
    with pytest.raises(ConfigError, match="no vocabulary field named 'usr'"):
        build_model("finalmlp", named_schema(FRAPPE_BARS_VOCAB), fs1_context=["usr"])
    with pytest.raises(ConfigError, match="not a vocabulary field"):
        build_model("finalmlp", tiny_schema, fs1_context=[5])  # field 5 is the numeric one
    with pytest.raises(ConfigError, match="feature_selection"):
        build_model("finalmlp", tiny_schema, fs1_context=[0], feature_selection=False)
    with pytest.raises(ConfigError, match="num_heads"):
        build_model("finalmlp", tiny_schema, **{**SMALL, "num_heads": 3})


def test_learns_a_pure_interaction_that_logistic_regression_cannot():
    data = xor_data()
    torch.manual_seed(0)
    model = build_model(
        "finalmlp", data.schema, **SMALL, mlp1_dropout=0.0, mlp2_dropout=0.0, fs1_context=[0]
    )
    assert data.lr_auc < 0.6
    assert xor_auc(model, data, epochs=5) > 0.95


@pytest.mark.parametrize("ssem", ["share", "ser", "gm", "mmoe"])
def test_streams_are_tf4ctr_encoders_by_configuration(tiny_schema, tiny_batch, ssem):
    stream = {"name": "gated_mlp", "hidden_units": [8], "gate_hidden_units": [5]}
    torch.manual_seed(0)
    model = build_model(
        "tf4ctr",
        tiny_schema,
        embedding_dim=4,
        ssem=ssem,
        simple_encoder={**stream, "context_fields": [1]},
        complex_encoder={**stream, "hidden_units": [16], "context_fields": [0]},
    )
    assert isinstance(model.simple_encoder, GatedMLPEncoder)
    assert isinstance(model.complex_encoder, GatedMLPEncoder)
    check_twin_gradients(model, tiny_batch)


def test_encoder_context_fields_are_positions(tiny_schema):
    with pytest.raises(ConfigError, match="0-based positions"):
        build_model(
            "tf4ctr", tiny_schema, simple_encoder={"name": "gated_mlp", "context_fields": ["user"]}
        )
