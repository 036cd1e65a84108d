"""Dynamic Fusion Module (paper §III-F, Eq. 8–11).

A fusion head turns the two encoders' outputs into the final logit. Each gets
the encoders' hidden representations (h_s, h_c) and their logits (z_s, z_c);
the sigmoid comes after fusion, in the loss or at prediction time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf4ctr.registry import Registry


class Fusion(nn.Module):
    """Base class: ``forward(h_s, h_c, z_s, z_c) -> logit [B]``."""

    #: whether the fused logit reads the encoders' logits z_s, z_c (False: only h_s, h_c)
    reads_logits: bool = True

    def forward(
        self, h_s: torch.Tensor, h_c: torch.Tensor, z_s: torch.Tensor, z_c: torch.Tensor
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class SumFusion(Fusion):
    """``sum``: z_s + z_c, the plain logit sum of most parallel CTR models (§III-H)."""

    def __init__(self, simple_dim: int, complex_dim: int) -> None:
        super().__init__()

    def forward(self, h_s, h_c, z_s, z_c):
        return z_s + z_c


class WeightedSumFusion(Fusion):
    """``wsf``: w1·z_s + w2·z_c with learnable weights initialised to 0.5, Eq. 8."""

    def __init__(self, simple_dim: int, complex_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((2,), 0.5))

    def forward(self, h_s, h_c, z_s, z_c):
        return self.weight[0] * z_s + self.weight[1] * z_c


class VotingFusion(Fusion):
    """``vf``: Gumbel-softmax vote between the encoders, Eq. 9.

    π_s = W_es·h_s and π_c = W_hs·h_c are the vote's logits (the paper writes
    log π; a linear layer already lives in log space). While training, Gumbel
    noise makes the vote stochastic; at evaluation it is the plain softmax of
    π/τ, so predictions are repeatable (the public code sampled noise at
    evaluation too). Each side has its own correctly sized π layer.
    """

    def __init__(self, simple_dim: int, complex_dim: int, *, tau: float = 0.8) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.tau = tau
        self.pi_simple = nn.Linear(simple_dim, 1)
        self.pi_complex = nn.Linear(complex_dim, 1)

    def vote(self, h_s: torch.Tensor, h_c: torch.Tensor) -> torch.Tensor:
        """The probabilities [B, 2] given to (simple, complex)."""
        pi = torch.cat([self.pi_simple(h_s), self.pi_complex(h_c)], dim=-1)
        if self.training:
            return F.gumbel_softmax(pi, tau=self.tau, hard=False)
        return torch.softmax(pi / self.tau, dim=-1)

    def forward(self, h_s, h_c, z_s, z_c):
        p = self.vote(h_s, h_c)
        return p[:, 0] * z_s + p[:, 1] * z_c


class ConcatFusion(Fusion):
    """``cf``: one linear layer over [h_s ‖ h_c], Eq. 10."""

    reads_logits = False

    def __init__(self, simple_dim: int, complex_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(simple_dim + complex_dim, 1)

    def forward(self, h_s, h_c, z_s, z_c):
        return self.linear(torch.cat([h_s, h_c], dim=-1)).squeeze(-1)


class MoEFusion(Fusion):
    """``moef``: softmax gate over two linear experts of [h_s ‖ h_c], Eq. 11."""

    reads_logits = False

    def __init__(self, simple_dim: int, complex_dim: int, *, num_experts: int = 2) -> None:
        super().__init__()
        width = simple_dim + complex_dim
        self.gate = nn.Linear(width, num_experts)
        self.experts = nn.Linear(width, num_experts)  # one output per expert: m_1, m_2

    def forward(self, h_s, h_c, z_s, z_c):
        both = torch.cat([h_s, h_c], dim=-1)
        return (torch.softmax(self.gate(both), dim=-1) * self.experts(both)).sum(dim=-1)


FUSION_TYPES: Registry[type[Fusion]] = Registry("fusion")
for _name, _cls in (
    ("sum", SumFusion),
    ("wsf", WeightedSumFusion),
    ("vf", VotingFusion),
    ("cf", ConcatFusion),
    ("moef", MoEFusion),
):
    FUSION_TYPES.add(_name, _cls)


def build_fusion(name: str, simple_dim: int, complex_dim: int) -> Fusion:
    """Build a fusion head by name: ``sum``, ``wsf``, ``vf``, ``cf`` or ``moef``."""
    return FUSION_TYPES[name](simple_dim, complex_dim)
