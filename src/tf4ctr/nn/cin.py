"""Compressed Interaction Network (Lian et al., "xDeepFM: Combining Explicit and
Implicit Feature Interactions for Recommender Systems", KDD 2018).

CIN builds interactions at the vector level: each layer takes the Hadamard
product of every (previous-layer map, input field) pair and compresses the
H_{k-1}·m products into H_k new maps, so layer k holds degree-(k+1)
interactions whose count stays fixed instead of growing with the degree.
Sum-pooling each map over the embedding dimension gives one number per map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.linear import FirstOrder
from tf4ctr.nn.types import FeatureInput


class CIN(nn.Module):
    """X^k_h = Σ_{i,j} W^{k,h}_{ij} (X^{k-1}_i ∘ X^0_j) (xDeepFM Eq. 6), ``[B, m, d] -> [B, ΣH_k]``.

    Every layer's maps are both pooled into the output and fed to the next
    layer (the paper's plain "direct" connection; its optional split-half
    variant, which halves the maps fed forward, is not implemented). No bias
    and no activation, as in Eq. 6: the paper found the identity best.
    """

    def __init__(self, num_fields: int, hidden_units: Sequence[int]) -> None:
        super().__init__()
        if not hidden_units or min(hidden_units) < 1:
            raise ValueError(f"cin_hidden_units must be non-empty and positive, got {hidden_units}")
        self.weights = nn.ParameterList()
        prev = num_fields
        for units in hidden_units:
            # W^k as a [H_k, H_{k-1}·m] map; Xavier-normal like every Linear in the zoo.
            std = (2.0 / (prev * num_fields + units)) ** 0.5
            self.weights.append(nn.Parameter(torch.randn(units, prev * num_fields) * std))
            prev = units
        self.output_dim = int(sum(hidden_units))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        pooled = []
        x = x0
        for w in self.weights:
            # All pairwise Hadamard products of (map h, field j): [B, H_{k-1}·m, d].
            z = (x.unsqueeze(2) * x0.unsqueeze(1)).flatten(1, 2)
            x = torch.einsum("bzd,kz->bkd", z, w)
            pooled.append(x.sum(dim=-1))
        return torch.cat(pooled, dim=-1)


@register_encoder("cin")
class CINEncoder(Encoder):
    """CIN plus (optionally) the first-order LR term: xDeepFM's explicit side.

    xDeepFM's output is LR + CIN + DNN; putting the LR term in this encoder's
    logit makes xDeepFM exactly "cin ∥ mlp, summed", and the TF Loss sees the
    whole explicit part as z_s. ``cin_hidden_units`` defaults to (16, 16, 16),
    the setting FuxiCTR/BARS commonly use on Frappe-sized data (the paper's
    own tuned values are larger, for Criteo-scale data).
    """

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        cin_hidden_units: Sequence[int] = (16, 16, 16),
        with_linear: bool = True,
    ) -> None:
        super().__init__()
        self.cin = CIN(ctx.num_fields, cin_hidden_units)
        self.output_dim = self.cin.output_dim
        self.head = nn.Linear(self.output_dim, 1)
        nn.init.xavier_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # The head already has a bias: the LR term goes without one.
        self.first_order = (
            FirstOrder(ctx.vocab_sizes, ctx.num_numeric, bias=False, **ctx.table_layout)
            if with_linear
            else None
        )

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.cin(emb)
        logit = self.head(hidden).squeeze(-1)
        if self.first_order is not None:
            logit = logit + self.first_order(x)
        return hidden, logit
