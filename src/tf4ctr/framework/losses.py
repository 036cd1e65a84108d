"""Losses, all computed from logits.

Every loss here takes logits and works in log-sigmoid space, so a confident
wrong prediction gives a large finite loss rather than ``log(0)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def log_p_true(logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """log p_t, the log-probability the model gives to the true class.

    p_t = p for a positive and 1 − p for a negative (the label-aware form that
    the paper's Eq. 7 prints only for positives). Equal to minus the
    per-sample binary cross-entropy.
    """
    return -F.binary_cross_entropy_with_logits(logit, label, reduction="none")


def binary_cross_entropy(logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean log loss, L_ctr of Eq. 12."""
    return F.binary_cross_entropy_with_logits(logit, label)


def check_twin_focus_params(alpha: float, c: float, gamma: float) -> None:
    """Reject settings for which Eq. 7 is undefined or meaningless.

    c > 1 would let the complex weight's base 2 − c − p_t go negative, and a
    negative base to a fractional γ is NaN; the paper's code never checked.
    """
    for name, value, low, high in (("alpha", alpha, 0.0, 1.0), ("c", c, 0.0, 1.0)):
        if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    if not (isinstance(gamma, int | float) and math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")


def twin_focus_terms(
    z_s: torch.Tensor,
    z_c: torch.Tensor,
    label: torch.Tensor,
    *,
    c: float,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample L_simple and L_complex of Eq. 7 (before averaging).

    L_simple  = −(c + p_t)^γ · log p_t          (from the simple encoder's z_s)
    L_complex = −(2 − c − p_t)^γ · log p_t      (from the complex encoder's z_c)

    The modulating factor is not detached: the public code lets gradients flow
    through it, which is what Eq. 14 differentiates.
    """
    log_pt_s = log_p_true(z_s, label)
    log_pt_c = log_p_true(z_c, label)
    simple = -((c + log_pt_s.exp()) ** gamma) * log_pt_s
    complex_ = -((2.0 - c - log_pt_c.exp()) ** gamma) * log_pt_c
    return simple, complex_


def twin_focus_loss(
    z_s: torch.Tensor,
    z_c: torch.Tensor,
    label: torch.Tensor,
    *,
    alpha: float = 0.25,
    c: float = 0.7,
    gamma: float = 1.0,
) -> torch.Tensor:
    """L_TF = α·mean(L_simple) + (1 − α)·mean(L_complex), Eq. 7.

    With γ = 0 both terms are plain log loss, so L_TF is α-weighted BCE of the
    two encoders.
    """
    check_twin_focus_params(alpha, c, gamma)
    simple, complex_ = twin_focus_terms(z_s, z_c, label, c=c, gamma=gamma)
    return alpha * simple.mean() + (1.0 - alpha) * complex_.mean()


class TwinFocusLoss(nn.Module):
    """Eq. 7 as a module, for plugging into any model with two encoder logits.

    >>> loss_fn = TwinFocusLoss(alpha=0.25, c=0.7, gamma=1.0)
    >>> aux = loss_fn(z_s, z_c, y)       # add to your own CTR loss (Eq. 12)
    """

    def __init__(self, alpha: float = 0.25, c: float = 0.7, gamma: float = 1.0) -> None:
        super().__init__()
        check_twin_focus_params(alpha, c, gamma)
        self.alpha, self.c, self.gamma = float(alpha), float(c), float(gamma)

    def forward(self, z_s: torch.Tensor, z_c: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        simple, complex_ = twin_focus_terms(z_s, z_c, label, c=self.c, gamma=self.gamma)
        return self.alpha * simple.mean() + (1.0 - self.alpha) * complex_.mean()

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, c={self.c}, gamma={self.gamma}"


def focal_loss(
    logit: torch.Tensor, label: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017).

    FL = −α_t (1 − p_t)^γ log p_t with α_t = α for positives and 1 − α for
    negatives; batch mean. γ = 0 and α = 0.5 give half the log loss.
    """
    log_pt = log_p_true(logit, label)
    alpha_t = alpha * label + (1.0 - alpha) * (1.0 - label)
    return (-alpha_t * (1.0 - log_pt.exp()) ** gamma * log_pt).mean()


def reweighted_bce(logit: torch.Tensor, label: torch.Tensor, *, beta: float = 0.25) -> torch.Tensor:
    """R-CE (Wang et al., "Denoising Implicit Feedback for Recommendation", WSDM 2021).

    Each sample's log loss is weighted by the model's own (detached) probability
    of the true class to the power β, so samples the model finds very unlikely —
    treated as noisy — pull less. β = 0 is plain log loss.
    """
    log_pt = log_p_true(logit, label)
    weight = (beta * log_pt.detach()).exp()  # p_t^β, computed in log space
    return (-weight * log_pt).mean()


class CTRLoss(nn.Module):
    """The loss on the fused logit (L_ctr of Eq. 12), chosen by name."""

    NAMES = ("bce", "focal", "rce")

    def __init__(
        self,
        name: str = "bce",
        *,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        rce_beta: float = 0.25,
    ) -> None:
        super().__init__()
        if name not in self.NAMES:
            raise ValueError(
                f"unknown CTR loss {name!r} (expected one of: {', '.join(self.NAMES)})"
            )
        if not 0.0 <= focal_alpha <= 1.0:
            raise ValueError(f"focal_alpha must be in [0, 1], got {focal_alpha}")
        if focal_gamma < 0 or rce_beta < 0:
            raise ValueError("focal_gamma and rce_beta must be >= 0")
        self.name = name
        self.focal_alpha, self.focal_gamma, self.rce_beta = focal_alpha, focal_gamma, rce_beta

    def forward(self, logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.name == "focal":
            return focal_loss(logit, label, alpha=self.focal_alpha, gamma=self.focal_gamma)
        if self.name == "rce":
            return reweighted_bce(logit, label, beta=self.rce_beta)
        return binary_cross_entropy(logit, label)

    def extra_repr(self) -> str:
        return self.name
