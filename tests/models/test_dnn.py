"""DNN: shapes, gradients, a hand parameter count, and it learns interactions."""

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.models import build_model


def test_dnn_shapes_and_gradients(tiny_schema, tiny_batch):
    model = build_model("dnn", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    check_shapes_and_gradients(model, tiny_batch, twin=False)


def test_dnn_parameter_count_by_hand(tiny_schema):
    d, h1, h2 = 8, 16, 12
    vocab = sum(tiny_schema.vocab_sizes)  # 7 + 12 + 5 + 30 + 9 = 63
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    embedding = vocab * d + 1 * d  # categorical rows + one vector per numeric field
    layer1 = fields * d * h1 + h1 + 2 * h1  # weights, bias, batch-norm scale and shift
    layer2 = h1 * h2 + h2 + 2 * h2
    head = h2 + 1
    model = build_model("dnn", tiny_schema, embedding_dim=d, hidden_units=[h1, h2])
    assert count_params(model) == embedding + layer1 + layer2 + head == 1569


def test_dnn_learns_interactions(learn_data):
    auc = quick_valid_auc(learn_data, "dnn", embedding_dim=8, hidden_units=[64, 64])
    assert auc > learn_data.lr_auc
