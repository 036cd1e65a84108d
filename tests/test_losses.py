"""TF Loss (Eq. 7) against hand computation, and its gradients against Eq. 14."""

import math

import pytest
import torch

from tf4ctr.framework import TwinFocusLoss, twin_focus_loss, twin_focus_terms
from tf4ctr.framework.losses import binary_cross_entropy


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def hand_tf(ps, pc, ys, alpha, c, gamma):
    """Eq. 7 written out with plain floats, label-aware p_t."""
    simple, complex_ = [], []
    for p_s, p_c, y in zip(ps, pc, ys, strict=True):
        pt_s = p_s if y == 1 else 1 - p_s
        pt_c = p_c if y == 1 else 1 - p_c
        simple.append(-((c + pt_s) ** gamma) * math.log(pt_s))
        complex_.append(-((2 - c - pt_c) ** gamma) * math.log(pt_c))
    return alpha * sum(simple) / len(simple) + (1 - alpha) * sum(complex_) / len(complex_)


def test_single_sample_by_hand():
    # p_s = 0.5 (y=1): L_simple = -(0.7 + 0.5) ln 0.5 = 0.8317766...
    # p_c = 0.75 (y=0, so p_t = 0.25): L_complex = -(2 - 0.7 - 0.25) ln 0.25 = 1.4556091...
    z_s = torch.tensor([0.0], dtype=torch.float64)
    z_c = torch.tensor([math.log(3.0)], dtype=torch.float64)
    s, c = twin_focus_terms(z_s, z_c, torch.tensor([1.0], dtype=torch.float64), c=0.7, gamma=1.0)
    assert s.item() == pytest.approx(1.2 * math.log(2), abs=1e-12)
    s, c = twin_focus_terms(z_s, z_c, torch.tensor([0.0], dtype=torch.float64), c=0.7, gamma=1.0)
    assert c.item() == pytest.approx(1.05 * math.log(4), abs=1e-12)


@pytest.mark.parametrize(
    "alpha,c,gamma",
    [(0.25, 0.7, 1.0), (0.5, 0.0, 2.0), (0.35, 0.9, 3.0), (1.0, 1.0, 0.5), (0.0, 0.3, 1.5)],
)
def test_matches_hand_formula(alpha, c, gamma):
    ps = [0.05, 0.3, 0.5, 0.81, 0.97, 0.6]
    pc = [0.9, 0.2, 0.45, 0.12, 0.5, 0.99]
    ys = [1, 0, 1, 0, 1, 1]
    got = twin_focus_loss(
        torch.tensor([logit(p) for p in ps], dtype=torch.float64),
        torch.tensor([logit(p) for p in pc], dtype=torch.float64),
        torch.tensor(ys, dtype=torch.float64),
        alpha=alpha,
        c=c,
        gamma=gamma,
    )
    assert got.item() == pytest.approx(hand_tf(ps, pc, ys, alpha, c, gamma), rel=1e-10)


def test_gamma_zero_is_weighted_bce():
    g = torch.Generator().manual_seed(0)
    z_s, z_c = torch.randn(64, generator=g), torch.randn(64, generator=g)
    y = (torch.rand(64, generator=g) > 0.4).float()
    got = twin_focus_loss(z_s, z_c, y, alpha=0.3, c=0.6, gamma=0.0)
    want = 0.3 * binary_cross_entropy(z_s, y) + 0.7 * binary_cross_entropy(z_c, y)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_large_logits_stay_finite():
    z = torch.tensor([80.0, -80.0, 80.0, -80.0])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    loss = twin_focus_loss(z, z, y, alpha=0.5, c=0.7, gamma=2.0)
    assert math.isfinite(loss.item()) and loss.item() > 10


@pytest.mark.parametrize("c,gamma", [(0.7, 1.0), (0.9, 2.0), (0.3, 3.0)])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_gradients_follow_eq14(c, gamma, y):
    """∂L/∂z = (Eq. 14's factor) × a bracket, with the sign of the label.

    simple:  ∓(1 − p_t)(c + p_t)^(γ−1) · [c + p_t + γ p_t log p_t]
    complex: ∓(1 − p_t)(m − p_t)^(γ−1) · [m − p_t − γ p_t log p_t],  m = 2 − c
    """
    z = torch.linspace(-4, 4, 17, dtype=torch.float64)
    z_s, z_c = z.clone().requires_grad_(), z.clone().requires_grad_()
    label = torch.full_like(z, y)
    simple, complex_ = twin_focus_terms(z_s, z_c, label, c=c, gamma=gamma)
    simple.sum().backward()
    complex_.sum().backward()
    p = torch.sigmoid(z)
    pt = p if y == 1 else 1 - p
    sign = -1.0 if y == 1 else 1.0
    m = 2 - c
    eq14_s = (1 - pt) * (c + pt) ** (gamma - 1)
    eq14_c = (1 - pt) * (m - pt) ** (gamma - 1)
    torch.testing.assert_close(z_s.grad, sign * eq14_s * (c + pt + gamma * pt * pt.log()))
    torch.testing.assert_close(z_c.grad, sign * eq14_c * (m - pt - gamma * pt * pt.log()))


def test_hard_samples_push_the_complex_encoder_harder():
    """The paper's reading of Eq. 14: on a misclassified sample the simple encoder
    gets a smaller gradient than the complex one; on an easy one, a larger share."""
    y = torch.tensor([1.0])
    grads = {}
    for name, zval in (("hard", -3.0), ("easy", 3.0)):
        z_s = torch.tensor([zval], requires_grad=True)
        z_c = torch.tensor([zval], requires_grad=True)
        s, c = twin_focus_terms(z_s, z_c, y, c=0.7, gamma=2.0)
        (s + c).sum().backward()
        grads[name] = (z_s.grad.abs().item(), z_c.grad.abs().item())
    hard_s, hard_c = grads["hard"]
    easy_s, easy_c = grads["easy"]
    assert hard_s < hard_c
    assert easy_s / easy_c > hard_s / hard_c


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"c": 1.2}, "c must be in"),
        ({"c": -0.1}, "c must be in"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"gamma": -1.0}, "gamma must be"),
        ({"gamma": float("nan")}, "gamma must be"),
    ],
)
def test_invalid_parameters_rejected(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        TwinFocusLoss(**kwargs)
    z = torch.zeros(2)
    with pytest.raises(ValueError, match=msg):
        twin_focus_loss(z, z, z, **kwargs)


def test_module_equals_function():
    g = torch.Generator().manual_seed(1)
    z_s, z_c = torch.randn(32, generator=g), torch.randn(32, generator=g)
    y = (torch.rand(32, generator=g) > 0.5).float()
    mod = TwinFocusLoss(alpha=0.35, c=0.9, gamma=1.0)
    assert mod(z_s, z_c, y).item() == pytest.approx(
        twin_focus_loss(z_s, z_c, y, alpha=0.35, c=0.9, gamma=1.0).item()
    )


# --- the other losses of Table II -------------------------------------------------

from tf4ctr.framework import CTRLoss, focal_loss, reweighted_bce  # noqa: E402


def test_focal_loss_by_hand():
    # y=1, p=0.8: -0.25 * 0.2^2 * ln 0.8 ; y=0, p=0.3 (p_t=0.7): -0.75 * 0.3^2 * ln 0.7
    z = torch.tensor([logit(0.8), logit(0.3)], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    want = (-0.25 * 0.04 * math.log(0.8) - 0.75 * 0.09 * math.log(0.7)) / 2
    assert focal_loss(z, y, alpha=0.25, gamma=2.0).item() == pytest.approx(want, rel=1e-12)


def test_focal_reduces_to_half_bce():
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(50, generator=g), (torch.rand(50, generator=g) > 0.5).float()
    assert focal_loss(z, y, alpha=0.5, gamma=0.0).item() == pytest.approx(
        0.5 * binary_cross_entropy(z, y).item(), rel=1e-6
    )


def test_rce_by_hand_and_detached_weight():
    # y=1, p=0.8: -(0.8^0.5) ln 0.8 ; y=0, p=0.9 (p_t=0.1): -(0.1^0.5) ln 0.1
    z = torch.tensor([logit(0.8), logit(0.9)], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    want = (-(0.8**0.5) * math.log(0.8) - (0.1**0.5) * math.log(0.1)) / 2
    loss = reweighted_bce(z, y, beta=0.5)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    loss.backward()
    # the weight is detached: gradient = w * (p - y) / N
    p = torch.sigmoid(z.detach())
    w = torch.tensor([0.8**0.5, 0.1**0.5], dtype=torch.float64)
    torch.testing.assert_close(z.grad, w * (p - y) / 2)


def test_rce_beta_zero_is_bce():
    g = torch.Generator().manual_seed(3)
    z, y = torch.randn(40, generator=g), (torch.rand(40, generator=g) > 0.5).float()
    assert reweighted_bce(z, y, beta=0.0).item() == pytest.approx(binary_cross_entropy(z, y).item())


def test_ctr_loss_by_name():
    z, y = torch.tensor([0.3, -1.2]), torch.tensor([1.0, 0.0])
    assert CTRLoss("bce")(z, y).item() == pytest.approx(binary_cross_entropy(z, y).item())
    assert CTRLoss("focal", focal_alpha=0.4, focal_gamma=1.0)(z, y).item() == pytest.approx(
        focal_loss(z, y, alpha=0.4, gamma=1.0).item()
    )
    assert CTRLoss("rce", rce_beta=0.3)(z, y).item() == pytest.approx(
        reweighted_bce(z, y, beta=0.3).item()
    )
    with pytest.raises(ValueError, match="unknown CTR loss"):
        CTRLoss("hinge")
