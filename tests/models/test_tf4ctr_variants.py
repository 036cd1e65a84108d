"""TF4CTR-DeepFM / -WideDeep / -xDeepFM (Table V): composed from build_tf4ctr,
every SSEM × several fusions trains a step with the TF Loss, and one learns."""

import pytest
import torch

from tests.models.conftest import check_shapes_and_gradients, quick_valid_auc
from tf4ctr.errors import ConfigError
from tf4ctr.framework import TwinModel
from tf4ctr.framework.ssem import SeparateEmbedding
from tf4ctr.models import build_model, model_defaults
from tf4ctr.nn.cin import CINEncoder
from tf4ctr.nn.encoder import EncoderContext, MLPEncoder, build_encoder
from tf4ctr.nn.fm import FMEncoder
from tf4ctr.nn.linear import LREncoder

SIMPLE = {"tf4ctr_deepfm": FMEncoder, "tf4ctr_widedeep": LREncoder, "tf4ctr_xdeepfm": CINEncoder}
SMALL = dict(embedding_dim=8, complex_hidden_units=[16, 16])
EXTRA = {"tf4ctr_xdeepfm": dict(cin_hidden_units=[4, 4])}


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_variant_defaults_are_tf4ctr_with_another_simple_encoder(tiny_schema, name):
    defaults = model_defaults(name)
    assert defaults["ssem"] == "ser" and defaults["fusion"] == "wsf"
    assert defaults["embedding_dim"] == 16
    assert tuple(defaults["complex_hidden_units"]) == (400, 400, 400)
    model = build_model(name, tiny_schema, **SMALL, **EXTRA.get(name, {}))
    assert isinstance(model, TwinModel)
    assert isinstance(model.simple_encoder, SIMPLE[name])
    assert isinstance(model.complex_encoder, MLPEncoder)
    # SER: the simple side reads a table half as wide.
    assert isinstance(model.ssem, SeparateEmbedding) and model.ssem.simple_dim == 4


@pytest.mark.parametrize("fusion", ["sum", "wsf", "cf", "moef", "vf"])
@pytest.mark.parametrize("ssem", ["share", "ser", "gm", "mmoe"])
@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_every_variant_ssem_and_fusion_trains_a_step(tiny_schema, tiny_batch, name, ssem, fusion):
    torch.manual_seed(0)
    model = build_model(name, tiny_schema, ssem=ssem, fusion=fusion, **SMALL, **EXTRA.get(name, {}))
    check_shapes_and_gradients(model, tiny_batch, twin=True)


def test_lr_from_embedding_is_a_linear_map_of_the_embedding(tiny_schema, tiny_batch):
    torch.manual_seed(0)
    ctx = EncoderContext(6, 4, tuple(tiny_schema.vocab_sizes), 1)
    enc = build_encoder({"name": "lr", "from_embedding": True}, ctx)
    emb = torch.randn(64, 6, 4, dtype=torch.float64)
    enc.double()
    w = enc.proj.weight.view(6, 4)  # one weight vector per field
    expected = (emb * w).sum(dim=(1, 2)) + enc.proj.bias
    hidden, logit = enc(emb, tiny_batch[0])
    assert torch.allclose(logit, expected) and torch.equal(hidden.squeeze(-1), logit)


def test_widedeep_variant_with_an_lr_over_raw_ids(tiny_schema, tiny_batch):
    model = build_model(
        "tf4ctr_widedeep", tiny_schema, ssem="gm", linear_from_embedding=False, **SMALL
    )
    assert not model.simple_encoder.from_embedding
    check_shapes_and_gradients(model, tiny_batch, twin=True)
    # Under SER that LR would leave the simple table unread: refused, not silently dead.
    with pytest.raises(ConfigError, match="linear_from_embedding"):
        build_model("tf4ctr_widedeep", tiny_schema, linear_from_embedding=False, **SMALL)


def test_tf4ctr_deepfm_learns_with_the_tf_loss(learn_data):
    auc = quick_valid_auc(
        learn_data, "tf4ctr_deepfm", loss="tf", embedding_dim=8, complex_hidden_units=[64, 64]
    )
    assert auc > learn_data.lr_auc
