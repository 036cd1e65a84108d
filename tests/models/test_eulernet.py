"""EulerNet: shapes, gradients, the Euler interaction layer against complex
arithmetic, a hand parameter count, the ``euler`` encoder on a twin side, and
it learns interactions."""

import cmath
import math

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.errors import ConfigError
from tf4ctr.models import build_model
from tf4ctr.nn.encoder import EncoderContext
from tf4ctr.nn.euler import EulerEncoder, EulerInteractionLayer, initial_orders
from tf4ctr.nn.types import FeatureInput


def test_eulernet_shapes_and_gradients(tiny_schema, tiny_batch):
    model = build_model("eulernet", tiny_schema, embedding_dim=8)
    check_shapes_and_gradients(model, tiny_batch, twin=False)


def test_eulernet_two_layers_with_layer_norm(tiny_schema, tiny_batch):
    model = build_model(
        "eulernet", tiny_schema, embedding_dim=8, order_list=[4, 5], layer_norm=True
    )
    check_shapes_and_gradients(model, tiny_batch, twin=False)


def test_euler_encoder_as_a_twin_side_with_tf_loss(tiny_schema, tiny_batch):
    model = build_model(
        "tf4ctr",
        tiny_schema,
        embedding_dim=8,
        simple_encoder={"name": "euler", "order_list": [6]},
        complex_hidden_units=[16, 16],
    )
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_eulernet_parameter_count_by_hand(tiny_schema):
    d, k1, k2 = 8, 4, 5
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    embedding = sum(tiny_schema.vocab_sizes) * d + 1 * d
    modulus = fields  # one μ per field

    def euler_layer(inputs: int, orders: int) -> int:
        alpha = inputs * orders
        biases = 2 * orders * d  # δ on the log-modulus and δ' on the phase
        implicit = (inputs * d) * (orders * d) + orders * d  # one W, b for both parts
        layer_norms = 2 * 2 * d  # scale and shift, real and imaginary parts
        return alpha + biases + implicit + layer_norms

    head = k2 * d + 1  # one w shared by real and imaginary parts
    model = build_model(
        "eulernet", tiny_schema, embedding_dim=d, order_list=[k1, k2], layer_norm=True
    )
    expected = embedding + modulus + euler_layer(fields, k1) + euler_layer(k1, k2) + head
    assert count_params(model) == expected


def test_embedding_init_per_field_xavier_or_library_normal(tiny_schema):
    d = 8
    model = build_model("eulernet", tiny_schema, embedding_dim=d)
    start = 0
    for vocab in tiny_schema.vocab_sizes:
        block = model.embedding.weight[start : start + vocab]
        bound = math.sqrt(6.0 / (vocab + d))  # Xavier-uniform of a [vocab, d] table
        assert block.abs().max() <= bound and block.abs().max() > bound / 2
        start += vocab
    normal = build_model("eulernet", tiny_schema, embedding_dim=d, embedding_init="normal")
    assert normal.embedding.weight.abs().max() < 1e-3
    with pytest.raises(ConfigError, match="embedding_init"):
        build_model("eulernet", tiny_schema, embedding_init="zeros")


def test_initial_orders_are_identity_or_cyclic_one_hot():
    torch.testing.assert_close(initial_orders(4, 4), torch.eye(4))
    alpha = initial_orders(3, 5)
    assert alpha.sum(dim=0).tolist() == [1.0] * 5  # each order starts as one field
    assert alpha.argmax(dim=0).tolist() == [0, 1, 2, 0, 1]


def _layer(num_inputs: int, num_orders: int, dim: int) -> EulerInteractionLayer:
    torch.manual_seed(0)
    layer = EulerInteractionLayer(num_inputs, num_orders, dim).double()
    with torch.no_grad():
        layer.implicit.weight.normal_(std=0.5)
        layer.implicit.bias.normal_(std=0.5)
    return layer.requires_grad_(False)


def _implicit(layer, x, num_orders, dim):
    """ReLU(W x + b) on the flattened input, written out row by row."""
    w, b = layer.implicit.weight, layer.implicit.bias
    flat = x.reshape(x.shape[0], -1)
    rows = [
        [max(0.0, float(w[o] @ flat[n] + b[o])) for o in range(w.shape[0])] for n in range(len(x))
    ]
    return torch.tensor(rows, dtype=torch.float64).view(len(x), num_orders, dim)


def test_integer_orders_give_the_product_of_complex_powers():
    """With α integer and δ = 0 the explicit part IS Π_j z_j^{α_jk}: Euler's formula."""
    layer = _layer(3, 2, 4)
    with torch.no_grad():
        layer.orders.copy_(torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]]))
        layer.log_modulus_bias.zero_()
        layer.phase_bias.zero_()
    real, imag = (
        torch.randn(2, 3, 4, dtype=torch.float64),
        torch.randn(2, 3, 4, dtype=torch.float64),
    )
    z = torch.complex(real, imag)
    explicit = torch.stack([z[:, 0] ** 2 * z[:, 1], z[:, 1] * z[:, 2] ** 3], dim=1)
    out_real, out_imag = layer.eval()(real, imag)
    torch.testing.assert_close(out_real, explicit.real + _implicit(layer, real, 2, 4))
    torch.testing.assert_close(out_imag, explicit.imag + _implicit(layer, imag, 2, 4))


def test_real_orders_and_biases_match_the_principal_complex_power():
    layer = _layer(3, 2, 2)
    with torch.no_grad():
        layer.orders.copy_(torch.tensor([[0.7, -0.4], [1.3, 0.2], [-0.5, 2.1]]))
    real, imag = (
        torch.randn(2, 3, 2, dtype=torch.float64),
        torch.randn(2, 3, 2, dtype=torch.float64),
    )
    alpha = layer.orders.tolist()
    d_mod, d_phase = layer.log_modulus_bias.tolist(), layer.phase_bias.tolist()
    expected = torch.zeros(2, 2, 2, dtype=torch.complex128)
    for n in range(2):
        for k in range(2):
            for c in range(2):
                # exp(Σ_j α_jk Log z_j + δ + iδ'), Log the principal complex log
                s = sum(
                    alpha[j][k] * cmath.log(complex(real[n, j, c], imag[n, j, c])) for j in range(3)
                )
                expected[n, k, c] = cmath.exp(s + d_mod[k][c] + 1j * d_phase[k][c])
    out_real, out_imag = layer.eval()(real, imag)
    torch.testing.assert_close(out_real, expected.real + _implicit(layer, real, 2, 2))
    torch.testing.assert_close(out_imag, expected.imag + _implicit(layer, imag, 2, 2))


def test_encoder_maps_embeddings_to_unit_phases_and_shares_the_head():
    torch.manual_seed(3)
    ctx = EncoderContext(num_fields=3, embedding_dim=2)
    encoder = EulerEncoder(ctx).double().eval().requires_grad_(False)
    with torch.no_grad():
        encoder.modulus.copy_(torch.tensor([[0.5], [2.0], [1.5]]))
    emb = torch.randn(4, 3, 2, dtype=torch.float64)
    real, imag = encoder.modulus * torch.cos(emb), encoder.modulus * torch.sin(emb)
    out_real, out_imag = encoder.layers[0](real, imag)
    w, b = encoder.head.weight[0], encoder.head.bias[0]
    expected_logit = out_real.flatten(1) @ w + out_imag.flatten(1) @ w + b
    x = FeatureInput(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 0))
    hidden, logit = encoder(emb, x)
    torch.testing.assert_close(logit, expected_logit)
    torch.testing.assert_close(hidden, torch.cat([out_real.flatten(1), out_imag.flatten(1)], 1))
    assert hidden.shape == (4, encoder.output_dim) == (4, 2 * 3 * 2)


def test_eulernet_learns_interactions(learn_data):
    # 30 steps an epoch is few for EulerNet: its orders start first-order and
    # need a few hundred steps to mix, hence a larger step and more epochs
    # (dropout off to keep the test fast).
    auc = quick_valid_auc(learn_data, "eulernet", lr=1e-2, epochs=8, embedding_dim=8, dropout=0.0)
    print(f"eulernet valid AUC {auc:.4f} vs LR {learn_data.lr_auc:.4f}")
    assert auc > learn_data.lr_auc
