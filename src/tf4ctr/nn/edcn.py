"""The building blocks of EDCN (Chen et al., "Enhancing Explicit and Implicit
Feature Interactions via Information Sharing for Parallel Deep CTR Models",
CIKM 2021): a cross layer, a bridge module and a regulation module.

EDCN keeps every layer at the input width ``D = F·d`` so that the cross and
the deep branch can be fused element-wise after each layer and the fused
vector re-split into fields for the next one; every block here therefore maps
``[B, D]`` to ``[B, D]``.
"""

from __future__ import annotations

import torch
from torch import nn

from tf4ctr.nn.cross import cross_step

BRIDGE_TYPES = ("hadamard_product", "pointwise_addition", "concatenation", "attention_pooling")


class CrossLayer(nn.Module):
    """One DCN cross layer, x_{l+1} = x_0 · (x_lᵀ w) + b + x_l.

    EDCN reuses DCN's (Wang et al., ADKDD 2017) vector-weight cross layer
    (:func:`tf4ctr.nn.cross.cross_step`), one layer at a time because each
    layer reads a differently regulated input. ``w`` starts Xavier-normal like
    the MLP weights (a zero ``w``
    would make every cross layer the identity and starve ``w`` of gradient
    through the Hadamard bridge); ``b`` starts at zero.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, 1))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.xavier_normal_(self.weight)

    def forward(self, x0: torch.Tensor, xl: torch.Tensor) -> torch.Tensor:
        return cross_step(x0, xl, self.weight.squeeze(-1), self.bias)


class BridgeModule(nn.Module):
    """Fuses the cross output x_l and the deep output h_l into f_l, the paper's bridge module.

    - ``pointwise_addition``: f = x + h.
    - ``hadamard_product``: f = x ⊙ h (the paper's best and the default).
    - ``concatenation``: f = ReLU(W [x ‖ h] + b).
    - ``attention_pooling``: f = a_x ⊙ x + a_h ⊙ h with
      a = softmax(Hᵀ ReLU(W · + b)) computed from each branch by its own
      attention net. (FuxiCTR's version applies the first branch's net to
      both inputs and leaves the second unused; the paper gives each branch
      its own.)
    """

    def __init__(self, dim: int, bridge_type: str = "hadamard_product") -> None:
        super().__init__()
        if bridge_type not in BRIDGE_TYPES:
            raise ValueError(
                f"unknown bridge_type {bridge_type!r} (expected one of: {', '.join(BRIDGE_TYPES)})"
            )
        self.bridge_type = bridge_type
        if bridge_type == "concatenation":
            self.fuse = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU())
        elif bridge_type == "attention_pooling":
            self.attend_cross = self._attention_net(dim)
            self.attend_deep = self._attention_net(dim)

    @staticmethod
    def _attention_net(dim: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Softmax(dim=-1)
        )

    def forward(self, cross: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        if self.bridge_type == "hadamard_product":
            return cross * deep
        if self.bridge_type == "pointwise_addition":
            return cross + deep
        if self.bridge_type == "concatenation":
            return self.fuse(torch.cat([cross, deep], dim=-1))
        return self.attend_cross(cross) * cross + self.attend_deep(deep) * deep


class RegulationModule(nn.Module):
    """Field-wise gates that give the cross and the deep branch differently
    weighted copies of the same input: the paper's regulation module.

    Each branch has a learnable score per field; the gate is
    softmax(score / τ) over fields, and every field's d-wide slice of the input
    is scaled by its gate. Scores start equal (all ones, as in the authors'
    MindSpore code), so both branches begin with the same uniform 1/F
    weighting and learn to specialise. With ``batch_norm`` each gated output
    is batch-normalised, which is where EDCN puts its normalisation (the
    authors' code and FuxiCTR both do): it also undoes the 1/F shrinkage of
    the softmax.
    """

    def __init__(
        self,
        num_fields: int,
        embedding_dim: int,
        *,
        temperature: float = 1.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.num_fields = num_fields
        self.embedding_dim = embedding_dim
        self.temperature = float(temperature)
        self.cross_scores = nn.Parameter(torch.ones(num_fields))
        self.deep_scores = nn.Parameter(torch.ones(num_fields))
        dim = num_fields * embedding_dim
        self.cross_norm: nn.Module = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()
        self.deep_norm: nn.Module = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()

    def gates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (cross, deep) field gates, each ``[F]`` and summing to one."""
        return (
            torch.softmax(self.cross_scores / self.temperature, dim=0),
            torch.softmax(self.deep_scores / self.temperature, dim=0),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fields = x.view(x.size(0), self.num_fields, self.embedding_dim)
        cross_gate, deep_gate = self.gates()
        cross = (fields * cross_gate.unsqueeze(-1)).flatten(1)
        deep = (fields * deep_gate.unsqueeze(-1)).flatten(1)
        return self.cross_norm(cross), self.deep_norm(deep)
