"""FastDropout: torch's dropout by default; with ``fast`` on, the cheap mask of the same law."""

import pytest
import torch

from tf4ctr.nn.dropout import FastDropout, dropout_factors


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    f = dropout_factors(torch.Size([400, 1000]), p)
    dropped = (f == 0).float().mean().item()
    # 400k Bernoulli draws: 5 standard deviations is < 0.004
    assert dropped == pytest.approx(p, abs=5 * (p * (1 - p) / 4e5) ** 0.5 + 1e-4)
    kept = f[f != 0]
    assert torch.allclose(kept, torch.full_like(kept, kept[0].item()))
    assert kept[0].item() == pytest.approx(1 / (1 - p), rel=1e-4)


def fast(p: float) -> FastDropout:
    d = FastDropout(p)
    d.fast = True
    return d


def test_default_is_torch_dropout():
    x = torch.ones(1000)
    torch.manual_seed(3)
    a = FastDropout(0.4).train()(x)
    torch.manual_seed(3)
    torch.testing.assert_close(a, torch.nn.functional.dropout(x, 0.4, training=True))


def test_layers_take_the_fast_mask_switch_when_built():
    from tests.models.conftest import TINY
    from tf4ctr import run
    from tf4ctr.config import TrainConfig
    from tf4ctr.framework import Objective
    from tf4ctr.models import build_model
    from tf4ctr.nn import LayerOptions
    from tf4ctr.train import Trainer

    def drops(**options):
        model = build_model("dnn", TINY, embedding_dim=4, hidden_units=[8], **options)
        found = [m for m in model.modules() if isinstance(m, FastDropout)]
        assert found
        return model, found

    model, by_hand = drops()
    assert not any(d.fast for d in by_hand)  # built as torch's dropout
    Trainer(model, Objective(), TrainConfig())
    assert not any(d.fast for d in by_hand)  # the trainer leaves the layers as they were built
    _, fast = drops(layer_options=run.layer_options(TrainConfig()))
    assert all(d.fast for d in fast)  # the run engine's default: the fast mask
    _, plain = drops(layer_options=LayerOptions(fast_dropout=False, fold_embeddings=True))
    assert not any(d.fast for d in plain)
    assert FastDropout(0.1).fast is False  # the builder's options end with the build


def test_identity_in_eval_and_for_zero_p():
    x = torch.randn(50, 7)
    d = fast(0.3).eval()
    assert d(x) is x
    assert fast(0.0).train()(x) is x


def test_gradient_is_the_same_factors():
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)
    y = fast(0.25).train()(x)
    factors = torch.where(x.detach() != 0, y.detach() / x.detach(), torch.zeros(()))
    y.sum().backward()
    torch.testing.assert_close(x.grad, factors)


def test_reproducible_under_manual_seed_and_varies_between_calls():
    d = fast(0.5).train()
    x = torch.ones(1000)
    torch.manual_seed(7)
    a, b = d(x), d(x)
    torch.manual_seed(7)
    assert torch.equal(d(x), a)
    assert not torch.equal(a, b)


def test_rejects_bad_p():
    with pytest.raises(ValueError, match="dropout probability"):
        FastDropout(1.0)


def test_every_lane_drops_at_the_same_rate():
    # torch's int64 draws never set the top bit, so the top int16 lane of each word has
    # one random bit fewer: compared as raw int16 it would never drop. Every lane
    # (element position mod 4) must drop at rate p.
    torch.manual_seed(3)
    keep = (dropout_factors(torch.Size([400_000]), 0.2) > 0).float()
    for lane in range(4):
        assert keep[lane::4].mean().item() == pytest.approx(0.8, abs=0.005)


def test_masks_are_uncorrelated_between_neighbours():
    torch.manual_seed(4)
    keep = (dropout_factors(torch.Size([400_000]), 0.5) > 0).float()
    a, b = keep[:-1] - 0.5, keep[1:] - 0.5
    assert abs((a * b).mean().item()) < 0.005


def _train_twice(model, x, **switches):
    """Two training steps (the second sees updated running statistics) with MLP's class-wide
    switches set as given, restored after; returns the output and the input and parameter
    gradients. The dropout masks come from the same seed each time."""
    from tf4ctr.nn.mlp import MLP

    saved = {name: getattr(MLP, name) for name in switches}
    try:
        for name, value in switches.items():
            setattr(MLP, name, value)
        xi = x.clone().requires_grad_()
        torch.manual_seed(7)
        for _ in range(2):
            y = model(xi)
            y.square().sum().backward()
        return y.detach(), xi.grad, [q.grad for q in model.parameters()]
    finally:
        for name, value in saved.items():
            setattr(MLP, name, value)


@pytest.mark.parametrize("fast_mask", [False, True])
@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.2])
def test_mlp_fused_relu_dropout_is_bit_identical_to_the_modules(fast_mask, batch_norm, p):
    """MLP's training forward (ReLU in place, fused with the fast mask) gives the same outputs,
    input and parameter gradients and batch-norm statistics as its modules one by one, bit for
    bit, and draws the same masks from the same generator."""
    import copy

    from tf4ctr.nn.mlp import MLP

    torch.manual_seed(0)
    fused = MLP(12, [24, 24], dropout=p, batch_norm=batch_norm, output_dim=1).train()
    for d in fused.modules():
        if isinstance(d, FastDropout):
            d.fast = fast_mask
    plain = copy.deepcopy(fused)
    x = torch.randn(50, 12)
    y1, g1, p1 = _train_twice(fused, x, fuse_relu_dropout=True)
    y2, g2, p2 = _train_twice(plain, x, fuse_relu_dropout=False)
    assert torch.equal(y1, y2)
    assert torch.equal(g1, g2)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(fused.buffers(), plain.buffers(), strict=True))


def test_fused_relu_dropout_drops_at_the_rate_and_keeps_relu():
    from tf4ctr.nn.dropout import relu_then_dropout_

    torch.manual_seed(0)
    x = torch.randn(400, 1000)
    positive = x > 0
    y = relu_then_dropout_(x.clone(), fast(0.3).train())
    assert (y[~positive] == 0).all()
    dropped = (y[positive] == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.005)
    # the scale is 1 / (1 - p) with p rounded to a multiple of 2^-15
    torch.testing.assert_close(y[y != 0], x[y != 0] / 0.7, rtol=1e-4, atol=0)
