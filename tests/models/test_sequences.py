"""Sequence fields (KKBox's genre_ids, artist_name): masked pooling, and every model takes them."""

from __future__ import annotations

import pytest
import torch

from tf4ctr.data.encoded import FeatureSchema, FieldInfo
from tf4ctr.models import build_model
from tf4ctr.models.registry import MODELS as _REGISTRY
from tf4ctr.nn import FeatureEmbedding, FeatureInput

from .conftest import check_shapes_and_gradients

SCHEMA = FeatureSchema(
    (
        FieldInfo("user", "categorical", 6),
        FieldInfo("genres", "sequence", 7, width=3),
        FieldInfo("item", "categorical", 5),
        FieldInfo("artists", "sequence", 9, width=2, pooling="mean"),
        FieldInfo("price", "numeric", 0),
    )
)


def _batch(n: int = 48):
    g = torch.Generator().manual_seed(1)
    cols = [
        torch.randint(1, 6, (n, 1), generator=g),
        torch.randint(0, 7, (n, 3), generator=g),  # 0 = padding
        torch.randint(1, 5, (n, 1), generator=g),
        torch.randint(0, 9, (n, 2), generator=g),
    ]
    cat = torch.cat(cols, 1)
    cat[0, 1:4] = 0  # a row with no genre at all
    return FeatureInput(cat, torch.rand(n, 1, generator=g)), (
        torch.rand(n, generator=g) > 0.5
    ).float()


def test_masked_sum_and_mean_pooling_by_hand():
    emb = FeatureEmbedding(SCHEMA.vocab_sizes, 1, 4, **SCHEMA.table_layout)
    torch.nn.init.normal_(emb.weight)
    x, _ = _batch(5)
    out = emb(x)
    assert out.shape == (5, 5, 4)  # 4 vocabulary fields + 1 numeric
    w = emb.weight
    off = [0, 6, 13, 18]
    for i in range(5):
        row = x.categorical[i].tolist()
        assert torch.allclose(out[i, 0], w[off[0] + row[0]])
        genres = [w[off[1] + t] for t in row[1:4] if t != 0]
        expected = torch.stack(genres).sum(0) if genres else torch.zeros(4)
        assert torch.allclose(out[i, 1], expected, atol=1e-6)
        assert torch.allclose(out[i, 2], w[off[2] + row[4]])
        artists = [w[off[3] + t] for t in row[5:7] if t != 0]
        expected = torch.stack(artists).mean(0) if artists else torch.zeros(4)
        assert torch.allclose(out[i, 3], expected, atol=1e-6)
    assert torch.equal(out[0, 1], torch.zeros(4))  # all padding pools to zero


def test_sparse_lookup_pools_the_same():
    dense = FeatureEmbedding(SCHEMA.vocab_sizes, 1, 4, **SCHEMA.table_layout)
    sparse = FeatureEmbedding(SCHEMA.vocab_sizes, 1, 4, **SCHEMA.table_layout)
    sparse.load_state_dict(dense.state_dict())
    sparse.sparse = True
    x, _ = _batch()
    assert torch.allclose(dense(x), sparse(x))


@pytest.mark.parametrize("name", sorted(_REGISTRY))
def test_every_model_takes_sequence_fields(name):
    small = {"embedding_dim": 8}
    model = build_model(name, SCHEMA, **small)
    out = model(_batch()[0])
    # models with two encoders return z_s / z_c; TF Loss then trains their heads too
    twin = out.z_s is not None
    check_shapes_and_gradients(model, _batch(), twin=twin)
