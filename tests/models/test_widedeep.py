"""Wide & Deep: the first-order term by hand, the composition, gradients, learning."""

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.framework import TwinModel
from tf4ctr.models import build_model
from tf4ctr.nn.encoder import EncoderContext, build_encoder
from tf4ctr.nn.linear import FirstOrder, LREncoder
from tf4ctr.nn.types import FeatureInput


def test_first_order_matches_a_hand_sum():
    torch.manual_seed(0)
    vocab = [3, 4]
    layer = FirstOrder(vocab, 1)
    with torch.no_grad():
        layer.weights.weight.copy_(torch.arange(7, dtype=torch.float).unsqueeze(-1))  # w = row id
        layer.weights.numeric_weight.fill_(10.0)
        layer.bias.fill_(0.5)
    x = FeatureInput(torch.tensor([[0, 0], [2, 3]]), torch.tensor([[1.0], [0.25]]))
    # Row of (field f, value v) is offset_f + v with offsets (0, 3).
    expected = torch.tensor([0 + 3 + 10 * 1.0 + 0.5, 2 + (3 + 3) + 10 * 0.25 + 0.5])
    assert torch.allclose(layer(x), expected)


def test_first_order_without_bias_has_no_bias_parameter():
    layer = FirstOrder([3, 4], 0, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ["weights.weight"]  # no numeric table


def test_lr_encoder_reads_raw_ids_and_returns_its_logit_as_hidden(tiny_schema, tiny_batch):
    ctx = EncoderContext(6, 8, tuple(tiny_schema.vocab_sizes), 1)
    enc = build_encoder("lr", ctx)
    assert isinstance(enc, LREncoder) and enc.output_dim == 1
    x, _ = tiny_batch
    hidden, logit = enc(torch.randn(64, 6, 8), x)
    assert hidden.shape == (64, 1) and torch.equal(hidden.squeeze(-1), logit)
    # The embedding argument is ignored: LR has its own weights.
    assert torch.equal(enc(torch.zeros(64, 6, 8), x)[1], logit)
    assert torch.allclose(logit, enc.first_order(x))


def test_widedeep_is_share_lr_mlp_sum(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("widedeep", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    assert isinstance(model, TwinModel)
    model.eval()
    x, _ = tiny_batch
    out = model(x)
    assert torch.allclose(out.logit, out.z_s + out.z_c)
    assert torch.allclose(out.z_s, model.simple_encoder.first_order(x))


def test_widedeep_parameter_count_by_hand(tiny_schema):
    d, h1, h2 = 8, 16, 12
    vocab = sum(tiny_schema.vocab_sizes)  # 63
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    embedding = vocab * d + 1 * d
    wide = vocab * 1 + 1 * 1 + 1  # one weight per value, one per numeric field, a bias
    layer1 = fields * d * h1 + h1 + 2 * h1  # weights, bias, batch-norm scale and shift
    layer2 = h1 * h2 + h2 + 2 * h2
    deep_head = h2 + 1
    model = build_model("widedeep", tiny_schema, embedding_dim=d, hidden_units=[h1, h2])
    assert count_params(model) == embedding + wide + layer1 + layer2 + deep_head


def test_widedeep_shapes_and_gradients(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("widedeep", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_widedeep_learns_interactions(learn_data):
    auc = quick_valid_auc(learn_data, "widedeep", embedding_dim=8, hidden_units=[64, 64])
    assert auc > learn_data.lr_auc
