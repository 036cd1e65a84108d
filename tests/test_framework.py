"""SSEM × DFM: shapes, one training step, gradients, determinism."""

from dataclasses import dataclass

import pytest
import torch

from tf4ctr.framework import FUSION_TYPES, SSEM_TYPES, Objective, TwinFocusLoss
from tf4ctr.framework.fusion import VotingFusion
from tf4ctr.models import build_model
from tf4ctr.nn import FeatureEmbedding, FeatureInput


@dataclass
class Schema:
    vocab_sizes: list
    numeric: tuple = ()


SCHEMA = Schema(vocab_sizes=[7, 12, 5, 30], numeric=("n1",))


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in SCHEMA.vocab_sizes], 1)
    num = torch.rand(n, 1, generator=g)
    y = (torch.rand(n, generator=g) > 0.5).float()
    return FeatureInput(cat, num), y


SMALL = dict(embedding_dim=8, simple_hidden_units=[16], complex_hidden_units=[16, 16], dropout=0.1)


@pytest.mark.parametrize("ssem", sorted(SSEM_TYPES))
@pytest.mark.parametrize("fusion", sorted(FUSION_TYPES))
def test_every_ssem_dfm_pair_trains_a_step(ssem, fusion):
    torch.manual_seed(0)
    model = build_model("tf4ctr", SCHEMA, ssem=ssem, fusion=fusion, **SMALL)
    x, y = batch()
    out = model(x)
    assert out.logit.shape == (32,) and out.z_s.shape == (32,) and out.z_c.shape == (32,)
    objective = Objective(TwinFocusLoss(0.25, 0.7, 1.0), embedding_l2=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    parts = objective(model, out, y)
    opt.zero_grad()
    parts.total.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing, f"no gradient reached {missing}"
    opt.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed


def test_ser_uses_two_tables_with_derived_widths():
    model = build_model(
        "tf4ctr",
        SCHEMA,
        ssem="ser",
        embedding_dim=10,
        simple_embedding_dim=4,
        simple_hidden_units=[8],
        complex_hidden_units=[8, 8],
    )
    tables = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]
    assert sorted(t.dim for t in tables) == [4, 10]
    # the simple MLP is sized from the real simple width (5 fields x 4), not half the total
    assert model.simple_encoder.mlp.net[0].in_features == 5 * 4
    assert model.complex_encoder.mlp.net[0].in_features == 5 * 10


def test_vf_is_deterministic_in_eval_and_stochastic_in_training():
    torch.manual_seed(0)
    model = build_model("tf4ctr", SCHEMA, ssem="share", fusion="vf", **SMALL)
    x, _ = batch()
    model.eval()
    with torch.no_grad():
        a, b = model(x).logit, model(x).logit
    assert torch.equal(a, b)
    fusion = model.fusion
    assert isinstance(fusion, VotingFusion)
    h = torch.randn(32, 16)
    fusion.train()
    assert not torch.equal(fusion.vote(h, h), fusion.vote(h, h))
    fusion.eval()
    torch.testing.assert_close(fusion.vote(h, h).sum(-1), torch.ones(32))


def test_vf_handles_unequal_encoder_widths():
    model = build_model(
        "tf4ctr",
        SCHEMA,
        fusion="vf",
        embedding_dim=8,
        simple_hidden_units=[7],
        complex_hidden_units=[16, 32],
    )
    x, _ = batch()
    assert model(x).logit.shape == (32,)


def test_wsf_starts_at_half_and_sum_is_plain_sum():
    model = build_model("tf4ctr", SCHEMA, fusion="wsf", **SMALL)
    assert torch.equal(model.fusion.weight.detach(), torch.tensor([0.5, 0.5]))
    model = build_model(
        "dualmlp", SCHEMA, embedding_dim=8, simple_hidden_units=[8], complex_hidden_units=[8, 8]
    )
    model.eval()
    out = model(batch()[0])
    torch.testing.assert_close(out.logit, out.z_s + out.z_c)


def test_gm_gate_splits_the_embedding():
    model = build_model("tf4ctr", SCHEMA, ssem="gm", **SMALL)
    x, _ = batch()
    h = model.ssem.embedding(x)
    h_es, h_hs = model.ssem(x)
    torch.testing.assert_close(h_es + h_hs, h)


def test_embedding_l2_is_half_lambda_squared_norm():
    model = build_model("dnn", SCHEMA, embedding_dim=4, hidden_units=[8])
    x, y = batch()
    out = model(x)
    parts = Objective(embedding_l2=0.1)(model, out, y)
    w = model.embedding.weight
    nw = model.embedding.numeric_weight
    expected = 0.05 * (w.pow(2).sum() + nw.pow(2).sum())
    torch.testing.assert_close(parts.l2, expected)


def test_tf_loss_needs_encoder_logits():
    model = build_model("dnn", SCHEMA, embedding_dim=4, hidden_units=[8])
    x, y = batch()
    with pytest.raises(ValueError, match="two encoder logits"):
        Objective(TwinFocusLoss())(model, model(x), y)


def test_one_embedding_call_per_table(monkeypatch):
    """The fast path: a batch costs one lookup per table, not one per field."""
    calls = []
    real = torch.nn.functional.embedding

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "embedding", counting)
    model = build_model("tf4ctr", SCHEMA, ssem="ser", **SMALL)
    model(batch()[0])
    assert len(calls) == 2


def test_unique_rows_equals_torch_unique():
    from tf4ctr.nn.embedding import unique_rows

    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 50, (64, 7), generator=g) * 3 + 1000
    rows, inverse = unique_rows(index)
    expected_rows, expected_inverse = torch.unique(index, return_inverse=True)
    assert torch.equal(rows, expected_rows) and torch.equal(inverse, expected_inverse)


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_mlp_inference_folds_batch_norm_exactly(batch_norm, activation):
    from tf4ctr.nn import MLP

    torch.manual_seed(0)
    mlp = MLP(12, [16, 8], activation=activation, dropout=0.2, batch_norm=batch_norm, output_dim=1)
    mlp.train()
    for _ in range(3):  # move the running statistics away from their start
        mlp(torch.randn(64, 12) * 3 + 1)
    for module in mlp.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            torch.nn.init.normal_(module.weight)
            torch.nn.init.normal_(module.bias)
    mlp.eval()
    x = torch.randn(32, 12)
    with torch.no_grad():
        reference = mlp.net(x)
        folded = mlp(x)
    assert torch.allclose(folded, reference, atol=1e-5)
    with torch.enable_grad():  # with autograd on, the plain layers run (nothing in place)
        assert torch.allclose(mlp(x), reference, atol=1e-6)


def test_mlp_inference_reuses_folded_weights_until_a_parameter_changes():
    """Under inference_mode the fold is kept between calls (Trainer.predict's slices), and is
    redone when the weights or statistics change in place, or the mode is switched."""
    from tf4ctr.nn import MLP

    torch.manual_seed(0)
    mlp = MLP(12, [16, 8], dropout=0.2, batch_norm=True, output_dim=1)
    mlp.train()
    mlp(torch.randn(64, 12))
    mlp.eval()
    x = torch.randn(32, 12)
    with torch.inference_mode():
        first = mlp(x)
        kept = mlp._fold_cache
        assert kept is not None and torch.equal(mlp(x), first)
        assert mlp._fold_cache is kept  # reused, not refolded
    with torch.no_grad():
        mlp.net[0].weight.mul_(2.0)  # an optimizer-style in-place update
    with torch.inference_mode():
        changed = mlp(x)
    with torch.no_grad():
        assert torch.equal(changed, mlp(x))  # the same fold, recomputed without the cache
    assert not torch.equal(changed, first)
    with torch.no_grad():
        mlp.net[1].running_var.mul_(4.0)  # a buffer changed in place refolds too
    with torch.inference_mode():
        assert not torch.equal(mlp(x), changed)
    mlp.train()
    assert mlp._fold_cache is None


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("width", [1, 8, 16])
def test_lookup_gradient_equals_torch_embedding_bit_for_bit(threads, width):
    """The index_add_ backward sums each table row's gradients in index order, as torch's
    embedding backward does: the same floats, duplicates and a strided upstream gradient
    included."""
    from tf4ctr.nn.embedding import lookup

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(width)
        weight = torch.randn(300, width, generator=g, requires_grad=True)
        index = torch.randint(0, 300, (4000, 7), generator=g)  # ~93 uses per row
        upstream = torch.randn(4000, 7, 2 * width, generator=g)[..., ::2]  # not contiguous
        ours = lookup(index, weight)
        (ours_grad,) = torch.autograd.grad(ours, weight, upstream)
        ref = torch.nn.functional.embedding(index, weight)
        (ref_grad,) = torch.autograd.grad(ref, weight, upstream)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(ours, ref)
    assert torch.equal(ours_grad, ref_grad)
    assert ours.grad_fn is not None and "LookupAddBackward" in type(ours.grad_fn).__name__


def test_feature_embedding_trains_alike_with_either_backward(monkeypatch):
    torch.manual_seed(0)
    emb = FeatureEmbedding([7, 12, 30], 1, 4)
    x = FeatureInput(torch.randint(0, 7, (256, 3)), torch.rand(256, 1))
    grads = []
    for fast in (True, False):
        monkeypatch.setattr(FeatureEmbedding, "fast_backward", fast)
        emb.zero_grad()
        (emb(x) ** 2).sum().backward()
        grads.append(emb.weight.grad.clone())
    assert torch.equal(*grads)
    with torch.no_grad():  # no gradient wanted: torch's own lookup, no custom node
        assert emb(x).grad_fn is None
