"""Differentiated feature-interaction encoders (paper §III-D, Eq. 6).

An encoder reads a field-structured embedding ``[B, F, d]`` and returns its
final representation ĥ (``[B, output_dim]``) and its own logit z = W·ĥ.
TF4CTR's default pair is two MLPs of different depth; any module with this
contract can take either side (FM, CrossNet, CIN… in the model zoo).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn import MLP, FeatureInput


class Encoder(nn.Module):
    """Base class: ``forward(emb, x) -> (hidden [B, output_dim], logit [B])``."""

    output_dim: int

    def forward(
        self, emb: torch.Tensor, x: FeatureInput
    ) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class MLPEncoder(Encoder):
    """MLP_s or MLP_c of Eq. 6: an MLP on the flattened embedding plus a logit head."""

    def __init__(
        self,
        num_fields: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.mlp = MLP(
            num_fields * embedding_dim,
            hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        self.output_dim = self.mlp.output_dim
        self.head = nn.Linear(self.output_dim, 1)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp(emb.flatten(1))
        return hidden, self.head(hidden).squeeze(-1)
