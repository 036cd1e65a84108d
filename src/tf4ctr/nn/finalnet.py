"""The building blocks of FinalNet (Zhu et al., "FINAL: Factorized Interaction
Layer for CTR Prediction", SIGIR 2023): the factorized interaction layer, a
block of them in place of an MLP, and the field gate that gives FinalNet's
first block its own view of the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.dropout import FastDropout
from tf4ctr.nn.mlp import activation_layer

RESIDUAL_TYPES = ("concat", "sum")


class FactorizedInteraction(nn.Module):
    """One linear map split in halves u, v; out = [u ‖ u ⊙ v] (``concat``) or u + u ⊙ v (``sum``).

    u carries the input on linearly and u ⊙ v adds its pairwise products, so a
    stack of L layers holds every multiplicative interaction up to degree 2^L
    without relying on the activation to create them, which is the paper's case
    for replacing the MLP layer. Under ``concat`` the map is ``in → out`` and out
    must be even; under ``sum`` it is ``in → 2·out``.
    """

    def __init__(self, input_dim: int, output_dim: int, residual_type: str = "concat") -> None:
        super().__init__()
        if residual_type not in RESIDUAL_TYPES:
            raise ValueError(
                f"unknown residual_type {residual_type!r} (expected one of: "
                f"{', '.join(RESIDUAL_TYPES)})"
            )
        if residual_type == "concat" and output_dim % 2:
            raise ValueError(
                f"a factorized interaction layer with residual_type 'concat' needs an even "
                f"width, got {output_dim}"
            )
        self.residual_type = residual_type
        self.linear = nn.Linear(input_dim, output_dim * (2 if residual_type == "sum" else 1))
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.linear(x).chunk(2, dim=-1)
        if self.residual_type == "concat":
            return torch.cat([u, u * v], dim=-1)
        return u + u * v


class FinalBlock(nn.Module):
    """Factorized interaction → [BatchNorm] → activation → [Dropout], per layer: an MLP
    whose Linear layers are :class:`FactorizedInteraction` layers."""

    def __init__(
        self,
        input_dim: int,
        hidden_units: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
        residual_type: str = "concat",
    ) -> None:
        super().__init__()
        if not hidden_units:
            raise ValueError("a FinalNet block needs at least one layer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = input_dim
        for units in hidden_units:
            layers.append(FactorizedInteraction(width, units, residual_type))
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(FastDropout(dropout))
            width = units
        self.output_dim = width
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FieldGate(nn.Module):
    """[B, F, d] → [B, 2F, d]: the embedding beside a gated copy, e ‖ e ⊙ g.

    g_{f,k} = Σ_j W_{f,j} e_{j,k} + b_f mixes the fields, dimension by dimension, so
    each field's gate depends on the whole sample. W starts at zero and b at one,
    so the gated copy starts equal to the embedding and the gate departs from the
    identity only as far as training takes it.
    """

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_fields, num_fields)
        nn.init.zeros_(self.linear.weight)
        nn.init.ones_(self.linear.bias)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        gate = self.linear(emb.transpose(1, 2)).transpose(1, 2)
        return torch.cat([emb, emb * gate], dim=1)
