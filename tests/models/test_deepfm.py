"""DeepFM: the FM term against the explicit pair sum, a hand parameter count,
gradients (TF Loss included) and learning."""

import itertools

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.models import build_model
from tf4ctr.nn.encoder import EncoderContext, build_encoder
from tf4ctr.nn.fm import bi_interaction, fm_pairwise


def test_fm_pairwise_matches_the_double_loop():
    torch.manual_seed(0)
    emb = torch.randn(3, 5, 4, dtype=torch.float64)
    expected = torch.zeros(3, dtype=torch.float64)
    for i, j in itertools.combinations(range(5), 2):
        expected += (emb[:, i] * emb[:, j]).sum(-1)
    assert torch.allclose(fm_pairwise(emb), expected)


def test_bi_interaction_matches_the_double_loop_per_dimension():
    torch.manual_seed(1)
    emb = torch.randn(2, 4, 3, dtype=torch.float64)
    expected = torch.zeros(2, 3, dtype=torch.float64)
    for i in range(4):
        for j in range(i + 1, 4):
            expected += emb[:, i] * emb[:, j]
    assert torch.allclose(bi_interaction(emb), expected)


def test_fm_encoder_logit_is_first_order_plus_pairwise(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    ctx = EncoderContext(6, 8, tuple(tiny_schema.vocab_sizes), 1)
    enc = build_encoder("fm", ctx)
    x, _ = tiny_batch
    emb = torch.randn(64, 6, 8)
    hidden, logit = enc(emb, x)
    assert hidden.shape == (64, 8) and enc.output_dim == 8
    assert torch.allclose(logit, enc.first_order(x) + fm_pairwise(emb), atol=1e-6)


def test_deepfm_parameter_count_by_hand(tiny_schema):
    d, h1, h2 = 8, 16, 12
    vocab = sum(tiny_schema.vocab_sizes)  # 7 + 12 + 5 + 30 + 9 = 63
    fields = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6
    shared_embedding = vocab * d + 1 * d  # categorical rows + one vector per numeric field
    fm_first_order = vocab * 1 + 1 * 1 + 1  # a weight per value and per numeric field, a bias
    fm_second_order = 0  # reads the shared embedding
    layer1 = fields * d * h1 + h1 + 2 * h1  # weights, bias, batch-norm scale and shift
    layer2 = h1 * h2 + h2 + 2 * h2
    dnn_head = h2 + 1
    sum_fusion = 0
    expected = (
        shared_embedding
        + fm_first_order
        + fm_second_order
        + layer1
        + layer2
        + dnn_head
        + sum_fusion
    )
    model = build_model("deepfm", tiny_schema, embedding_dim=d, hidden_units=[h1, h2])
    assert count_params(model) == expected == 1634  # 1569 (DNN) + 65


def test_deepfm_fuses_by_sum(tiny_schema, tiny_batch):
    model = build_model("deepfm", tiny_schema, embedding_dim=8, hidden_units=[16])
    model.eval()
    out = model(tiny_batch[0])
    assert torch.allclose(out.logit, out.z_s + out.z_c)


def test_deepfm_shapes_and_gradients_with_tf_loss(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model("deepfm", tiny_schema, embedding_dim=8, hidden_units=[16, 16])
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_deepfm_learns_interactions(learn_data):
    auc = quick_valid_auc(learn_data, "deepfm", embedding_dim=8, hidden_units=[64, 64])
    assert auc > learn_data.lr_auc
