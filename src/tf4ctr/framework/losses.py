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
