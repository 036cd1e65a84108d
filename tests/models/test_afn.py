"""AFN+: shapes, gradients (TF Loss included), the logarithmic transformation
by hand, its numerics at zero, and it learns interactions."""

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.models import build_model
from tf4ctr.nn.afn import LogarithmicTransformation

SMALL = {
    "embedding_dim": 8,
    "logarithmic_neurons": 12,
    "afn_hidden_units": [16, 16],
    "hidden_units": [16, 16],
}


def test_afn_shapes_and_gradients_with_tf_loss(tiny_schema, tiny_batch):
    model = build_model("afn", tiny_schema, **SMALL)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_afn_plus_alias_without_ltl_batch_norm(tiny_schema, tiny_batch):
    model = build_model("afn_plus", tiny_schema, **SMALL, ltl_batch_norm=False)
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_afn_parameter_count_by_hand(tiny_schema):
    d, neurons, h1, h2 = 8, 12, 16, 16
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    table = sum(tiny_schema.vocab_sizes) * d + 1 * d
    tables = 2 * table  # SER: the AFN side and the DNN side each own one, same width
    ltl = neurons * fields + 2 * fields + 2 * neurons  # orders w; BN over ln|e| and over exp
    afn_mlp = (neurons * d * h1 + h1 + 2 * h1) + (h1 * h2 + h2 + 2 * h2) + (h2 + 1)
    dnn = (fields * d * h1 + h1 + 2 * h1) + (h1 * h2 + h2 + 2 * h2) + (h2 + 1)
    fusion = 2  # WSF's w1, w2
    model = build_model("afn", tiny_schema, **SMALL)
    assert count_params(model) == tables + ltl + afn_mlp + dnn + fusion


def test_logarithmic_transformation_is_a_product_of_powers():
    torch.manual_seed(0)
    layer = LogarithmicTransformation(3, 4, batch_norm=False)
    emb = torch.randn(2, 3, 5)  # signed: the layer uses |e|
    e, w = emb.tolist(), layer.weight.tolist()
    expected = torch.ones(2, 4, 5, dtype=torch.float64)
    for b in range(2):
        for j in range(4):
            for c in range(5):
                product = 1.0
                for i in range(3):
                    product *= abs(e[b][i][c]) ** w[j][i]
                expected[b, j, c] = product
    with torch.no_grad():
        torch.testing.assert_close(layer(emb).double(), expected, rtol=1e-4, atol=1e-6)


def test_logarithmic_transformation_with_batch_norm_in_eval_is_normalised_product():
    torch.manual_seed(1)
    layer = LogarithmicTransformation(3, 4, batch_norm=True).eval()
    with torch.no_grad():
        layer.log_norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        layer.log_norm.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
        emb = torch.randn(2, 3, 5)
        eps = layer.log_norm.eps
        log_e = torch.log(emb.abs())
        z = (log_e - layer.log_norm.running_mean[:, None]) / torch.sqrt(
            layer.log_norm.running_var[:, None] + eps
        )
        y = torch.exp(torch.einsum("ji,bic->bjc", layer.weight, z))
        expected = y / (1.0 + layer.exp_norm.eps) ** 0.5  # default stats: mean 0, var 1
        torch.testing.assert_close(layer(emb), expected, rtol=1e-5, atol=1e-6)


def test_zero_embeddings_give_finite_outputs_and_gradients():
    layer = LogarithmicTransformation(4, 6, batch_norm=True)
    emb = torch.zeros(8, 4, 3, requires_grad=True)
    out = layer(emb)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(emb.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    layer.eval()
    with torch.no_grad():
        assert torch.isfinite(layer(torch.zeros(2, 4, 3))).all()


def test_logarithmic_transformation_gradcheck():
    torch.manual_seed(2)
    layer = LogarithmicTransformation(3, 2, batch_norm=False).double()
    # Away from the clamp, where ln|e| is smooth.
    emb = (torch.rand(2, 3, 4, dtype=torch.float64) + 0.5) * torch.sign(torch.randn(2, 3, 4))
    emb.requires_grad_(True)
    assert torch.autograd.gradcheck(layer, (emb,))


def test_afn_learns_interactions(learn_data):
    auc = quick_valid_auc(
        learn_data,
        "afn",
        epochs=3,
        embedding_dim=8,
        logarithmic_neurons=64,
        afn_hidden_units=[64, 64],
        hidden_units=[64, 64],
    )
    print(f"afn+ valid AUC {auc:.4f} vs LR {learn_data.lr_auc:.4f}")
    assert auc > learn_data.lr_auc
