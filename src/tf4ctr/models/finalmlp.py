"""FinalMLP (Mao, Zhu, Su, Cai, Li & Dong, "FinalMLP: An Enhanced Two-Stream MLP
Model for CTR Prediction", AAAI 2023): two MLP streams on one embedding, each
behind its own feature-selection gate, fused by a multi-head bilinear layer.

It is a twin model: stream 1 is the simple side (z_s), stream 2 the complex side
(z_c), each stream's logit head is its linear term of the bilinear fusion, so
``loss: tf`` applies to FinalMLP unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tf4ctr.framework import Fusion, TwinModel
from tf4ctr.framework.compose import build_twin
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


class BilinearStreamFusion(Fusion):
    """logit = z_s + z_c + Σ_h o_{s,h}ᵀ W_h o_{c,h}: FinalMLP's multi-head bilinear fusion.

    Both streams' outputs are cut into ``num_heads`` equal chunks and only chunk h
    of one meets chunk h of the other, which divides the D_s × D_c bilinear matrix
    by the number of heads. The linear terms w_sᵀ o_s + b_s and w_cᵀ o_c + b_c are
    the encoders' logit heads (z_s, z_c); the per-head biases of the paper add up to
    one constant, which those heads' biases already hold.
    """

    def __init__(self, simple_dim: int, complex_dim: int, num_heads: int = 1) -> None:
        super().__init__()
        if num_heads < 1 or simple_dim % num_heads or complex_dim % num_heads:
            raise ValueError(
                f"num_heads ({num_heads}) must divide both streams' output widths "
                f"({simple_dim} and {complex_dim})"
            )
        self.num_heads = num_heads
        head_s, head_c = simple_dim // num_heads, complex_dim // num_heads
        self.weight = nn.Parameter(torch.empty(num_heads, head_s, head_c))
        # Xavier-normal for a map from the heads' pairwise products to one logit.
        nn.init.normal_(self.weight, std=(2.0 / (num_heads * head_s * head_c + 1)) ** 0.5)

    def forward(self, h_s, h_c, z_s, z_c):
        heads_s = h_s.unflatten(1, (self.num_heads, -1))  # [B, k, D_s/k]
        heads_c = h_c.unflatten(1, (self.num_heads, -1))  # [B, k, D_c/k]
        projected = torch.einsum("bkx,kxy->bky", heads_s, self.weight)
        return z_s + z_c + (projected * heads_c).sum(dim=(1, 2))


def context_positions(schema: SchemaLike, fields: Any, key: str) -> list[int]:
    """Conditional fields given by name (or by position) → positions among the vocabulary fields."""
    if fields is None:
        return []
    if isinstance(fields, str | int):
        fields = [fields]
    if not isinstance(fields, list | tuple):
        raise ValueError(f"{key}: expected a list of field names, got {fields!r}")
    names = [str(f.name) for f in getattr(schema, "categorical", ())]
    positions = []
    for field in fields:
        if isinstance(field, str):
            if field not in names:
                known = ", ".join(names) if names else "none: this schema has no field names"
                raise ValueError(f"{key}: no vocabulary field named {field!r} (fields: {known})")
            positions.append(names.index(field))
        elif isinstance(field, int) and not isinstance(field, bool):
            positions.append(field)
        else:
            raise ValueError(f"{key}: expected field names, got {field!r}")
    return positions


@register("finalmlp")
def build_finalmlp(
    schema: SchemaLike,
    *,
    embedding_dim: int = 10,
    mlp1_hidden_units: Sequence[int] = (400,),
    mlp2_hidden_units: Sequence[int] = (100,),
    activation: str = "relu",
    mlp1_dropout: float = 0.4,
    mlp2_dropout: float = 0.4,
    mlp1_batch_norm: bool = True,
    mlp2_batch_norm: bool = True,
    feature_selection: bool = True,
    fs_hidden_units: Sequence[int] = (400,),
    fs1_context: Sequence[str] | None = None,
    fs2_context: Sequence[str] | None = None,
    num_heads: int = 5,
) -> TwinModel:
    """FinalMLP = ``share`` embedding → ``gated_mlp`` ∥ ``gated_mlp`` → bilinear fusion.

    Defaults: BARS's Frappe_x1 FinalMLP (the leaderboard's 0.9861): embedding 10,
    streams [400] and [100] with dropout 0.4 and batch norm, gates [400], 5 heads;
    BARS conditions stream 1's gate on ``[user]`` and stream 2's on ``[item]``,
    which are names of Frappe's fields, so they are set in its config
    (configs/frappe_x1/finalmlp.yaml) and the default is the context-free gate
    (one learned context vector, FuxiCTR's default). ``fs1_context`` and
    ``fs2_context`` name vocabulary fields (or give their 0-based positions);
    ``feature_selection: false`` drops both gates.
    """

    def stream(units: Sequence[int], dropout: float, batch_norm: bool, context: Any, key: str):
        return {
            "name": "gated_mlp",
            "hidden_units": list(units),
            "gate_hidden_units": list(fs_hidden_units),
            "context_fields": context_positions(schema, context, key),
            "feature_selection": feature_selection,
            "dropout": dropout,
            "batch_norm": batch_norm,
        }

    twin = build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder=stream(
            mlp1_hidden_units, mlp1_dropout, mlp1_batch_norm, fs1_context, "fs1_context"
        ),
        complex_encoder=stream(
            mlp2_hidden_units, mlp2_dropout, mlp2_batch_norm, fs2_context, "fs2_context"
        ),
        activation=activation,
    )
    # build_twin knows only the registered fusions; FinalMLP's own replaces the
    # parameter-free sum it was given.
    twin.fusion = BilinearStreamFusion(
        twin.simple_encoder.output_dim, twin.complex_encoder.output_dim, num_heads
    )
    return twin
