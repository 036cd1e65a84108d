"""FinalNet: the factorized interaction layer and the field gate against their formulas,
the 2B composition and its self-distillation, hand parameter counts (BARS's own
included), gradients and learning a pure interaction."""

import pytest
import torch
import torch.nn.functional as F

from tests.models.bars_frappe import FRAPPE_BARS_VOCAB, named_schema
from tests.models.conftest import check_shapes_and_gradients, count_params
from tests.models.xor import xor_auc, xor_data
from tf4ctr.errors import ConfigError
from tf4ctr.models import build_model
from tf4ctr.models.finalnet import FinalNet
from tf4ctr.nn.finalnet import FactorizedInteraction, FieldGate

SMALL = dict(embedding_dim=4, block1_hidden_units=[8, 6], block2_hidden_units=[4])


@pytest.mark.parametrize(
    "extra, twin",
    [
        ({}, True),
        ({"residual_type": "sum", "batch_norm": False}, True),
        ({"field_gate": False, "block1_activation": "identity"}, True),
        ({"block_type": "1B"}, False),
        ({"block_type": "1b", "field_gate": False}, False),
    ],
    ids=["2B", "2B-sum", "2B-no-gate", "1B", "1B-no-gate"],
)
def test_shapes_and_every_parameter_gets_gradient(tiny_schema, tiny_batch, extra, twin):
    # twin=True also trains with the TF Loss on the two blocks, beside the distillation.
    torch.manual_seed(0)
    model = build_model("finalnet", tiny_schema, **SMALL, **extra)
    assert isinstance(model, FinalNet)
    check_shapes_and_gradients(model, tiny_batch, twin=twin)


def test_factorized_interaction_matches_the_formula():
    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64)
    concat = FactorizedInteraction(5, 4, "concat").double()
    h = x @ concat.linear.weight.T + concat.linear.bias
    u, v = h[:, :2], h[:, 2:]
    torch.testing.assert_close(concat(x), torch.cat([u, u * v], dim=1))

    summed = FactorizedInteraction(5, 4, "sum").double()
    h = x @ summed.linear.weight.T + summed.linear.bias  # 8 wide
    u, v = h[:, :4], h[:, 4:]
    torch.testing.assert_close(summed(x), u + u * v)

    with pytest.raises(ValueError, match="even"):
        FactorizedInteraction(5, 3, "concat")
    with pytest.raises(ValueError, match="residual_type"):
        FactorizedInteraction(5, 4, "product")


def test_field_gate_matches_the_formula_and_starts_as_the_identity():
    torch.manual_seed(0)
    emb = torch.randn(2, 3, 4, dtype=torch.float64)
    gate = FieldGate(3).double()
    torch.testing.assert_close(gate(emb), torch.cat([emb, emb], dim=1))
    with torch.no_grad():
        gate.linear.weight.normal_()
        gate.linear.bias.normal_()
    w, b = gate.linear.weight, gate.linear.bias
    g = torch.einsum("fj,bjk->bfk", w, emb) + b.view(1, 3, 1)  # g_fk = Σ_j W_fj e_jk + b_f
    torch.testing.assert_close(gate(emb), torch.cat([emb, emb * g], dim=1))


def test_two_blocks_average_and_distil(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("finalnet", tiny_schema, **SMALL, block1_dropout=0.0, block2_dropout=0.0)
    x, _ = tiny_batch
    model.eval()
    emb = model.embedding(x)
    y1 = model.head1(model.block1(model.field_gate(emb).flatten(1))).squeeze(-1)
    y2 = model.head2(model.block2(emb.flatten(1))).squeeze(-1)
    out = model(x)
    torch.testing.assert_close(out.logit, (y1 + y2) / 2)
    torch.testing.assert_close(out.z_s, y1)
    torch.testing.assert_close(out.z_c, y2)
    assert out.aux_loss is None  # evaluation: no training-only loss

    model.train()
    out = model(x)
    target = torch.sigmoid(out.logit).detach()
    expected = F.binary_cross_entropy(torch.sigmoid(out.z_s), target) + F.binary_cross_entropy(
        torch.sigmoid(out.z_c), target
    )
    torch.testing.assert_close(out.aux_loss, expected)
    # The ensemble's probability is a target only: no gradient flows back through it.
    (got,) = torch.autograd.grad(out.aux_loss, model.head1.weight, retain_graph=True)
    (want,) = torch.autograd.grad(expected, model.head1.weight)
    torch.testing.assert_close(got, want)


def test_parameter_count_by_hand(tiny_schema):
    d = 4
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    width = fields * d  # 24
    embedding = sum(tiny_schema.vocab_sizes) * d + len(tiny_schema.numeric) * d
    gate = fields * fields + fields
    block1 = (2 * width * 8 + 8 + 2 * 8) + (8 * 6 + 6 + 2 * 6)  # concat: in → out, + BN
    block2 = width * 4 + 4 + 2 * 4
    heads = (6 + 1) + (4 + 1)
    model = build_model("finalnet", tiny_schema, **SMALL)
    # 256 + 42 + (408 + 66) + 108 + 12
    assert count_params(model) == embedding + gate + block1 + block2 + heads == 892
    summed = build_model("finalnet", tiny_schema, **SMALL, residual_type="sum", block_type="1B")
    block1 = (2 * width * 16 + 16 + 2 * 8) + (8 * 12 + 12 + 2 * 6)  # sum: in → 2·out
    assert count_params(summed) == embedding + gate + block1 + (6 + 1)


def test_bars_frappe_settings_have_bars_parameter_counts():
    # BARS's logs: FINAL_frappe_x1_003_c3722b71 (2B) 338502, FINAL_frappe_x1_006_75be0578
    # (1B, no field gate) 256791 parameters.
    schema = named_schema(FRAPPE_BARS_VOCAB)
    assert count_params(build_model("finalnet", schema)) == 338_502
    one_block = build_model("finalnet", schema, block_type="1B", field_gate=False)
    assert count_params(one_block) == 256_791


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"block_type": "1B"},
        {"block_type": "1B", "field_gate": False, "block1_activation": "identity"},
    ],
    ids=["2B", "1B", "1B-multiplicative-only"],
)
def test_learns_a_pure_interaction_that_logistic_regression_cannot(extra):
    # Without an activation the block is a polynomial: the interaction comes from u ⊙ v alone.
    data = xor_data()
    torch.manual_seed(0)
    hparams = {**SMALL, "block1_dropout": 0.0, "block2_dropout": 0.0, **extra}
    model = build_model("finalnet", data.schema, **hparams)
    assert data.lr_auc < 0.6
    assert xor_auc(model, data, epochs=5) > 0.95


def test_bad_settings_are_config_errors(tiny_schema):
    with pytest.raises(ConfigError, match="block_type"):
        build_model("finalnet", tiny_schema, block_type="3B")
    with pytest.raises(ConfigError, match="even"):
        build_model("finalnet", tiny_schema, block1_hidden_units=[7])
    with pytest.raises(ConfigError, match="block1_dropout"):
        build_model("finalnet", tiny_schema, block1_dropout=1.0)
