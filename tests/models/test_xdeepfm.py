"""xDeepFM: CIN against its formula written out, LR inside the CIN encoder,
gradients (TF Loss included) and learning."""

import torch

from tests.models.conftest import check_shapes_and_gradients, count_params, quick_valid_auc
from tf4ctr.models import build_model
from tf4ctr.nn.cin import CIN
from tf4ctr.nn.encoder import EncoderContext, build_encoder


def test_cin_matches_the_formula_written_out():
    torch.manual_seed(0)
    m, d, units = 3, 4, [2, 3]
    cin = CIN(m, units).double()
    x0 = torch.randn(2, m, d, dtype=torch.float64)
    pooled = []
    prev = x0
    for k, h_k in enumerate(units):
        w = cin.weights[k].view(h_k, prev.shape[1], m)  # W^{k,h}_{ij}
        nxt = torch.zeros(2, h_k, d, dtype=torch.float64)
        for h in range(h_k):
            for i in range(prev.shape[1]):
                for j in range(m):
                    nxt[:, h] += w[h, i, j] * prev[:, i] * x0[:, j]
        pooled.append(nxt.sum(dim=-1))  # sum pooling over the embedding dimension
        prev = nxt
    assert torch.allclose(cin(x0), torch.cat(pooled, dim=-1))


def test_cin_encoder_adds_the_first_order_term_only_with_linear(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    ctx = EncoderContext(6, 8, tuple(tiny_schema.vocab_sizes), 1)
    x, _ = tiny_batch
    emb = torch.randn(64, 6, 8)
    enc = build_encoder({"name": "cin", "cin_hidden_units": [4, 5]}, ctx)
    hidden, logit = enc(emb, x)
    assert hidden.shape == (64, 9) and enc.output_dim == 9
    assert torch.allclose(logit, enc.head(hidden).squeeze(-1) + enc.first_order(x))
    plain = build_encoder({"name": "cin", "cin_hidden_units": [4, 5], "with_linear": False}, ctx)
    assert plain.first_order is None
    assert torch.allclose(plain(emb, x)[1], plain.head(plain(emb, x)[0]).squeeze(-1))


def test_xdeepfm_parameter_count_by_hand(tiny_schema):
    d, c1, c2, h1 = 8, 4, 5, 16
    vocab = sum(tiny_schema.vocab_sizes)  # 63
    m = len(tiny_schema.vocab_sizes) + len(tiny_schema.numeric)  # 6 fields
    embedding = vocab * d + 1 * d
    linear = vocab * 1 + 1 * 1  # no bias: the CIN head's bias serves
    cin = c1 * (m * m) + c2 * (c1 * m)  # W^k is H_k × (H_{k-1}·m), no bias
    cin_head = (c1 + c2) + 1
    deep = m * d * h1 + h1 + 2 * h1  # linear, batch-norm scale and shift
    deep_head = h1 + 1
    model = build_model(
        "xdeepfm", tiny_schema, embedding_dim=d, cin_hidden_units=[c1, c2], hidden_units=[h1]
    )
    assert count_params(model) == embedding + linear + cin + cin_head + deep + deep_head


def test_xdeepfm_is_lr_plus_cin_plus_dnn(tiny_schema, tiny_batch):
    model = build_model("xdeepfm", tiny_schema, embedding_dim=8, hidden_units=[16])
    model.eval()
    out = model(tiny_batch[0])
    assert torch.allclose(out.logit, out.z_s + out.z_c)


def test_xdeepfm_shapes_and_gradients_with_tf_loss(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    model = build_model(
        "xdeepfm", tiny_schema, embedding_dim=8, cin_hidden_units=[4, 4], hidden_units=[16, 16]
    )
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_xdeepfm_learns_interactions(learn_data):
    # Two CIN layers so the recursion is exercised; 4 epochs keep the (costly) CIN test short.
    auc = quick_valid_auc(
        learn_data,
        "xdeepfm",
        epochs=4,
        embedding_dim=8,
        cin_hidden_units=[8, 8],
        hidden_units=[64, 64],
    )
    assert auc > learn_data.lr_auc
