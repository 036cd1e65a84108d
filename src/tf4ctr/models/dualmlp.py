"""DualMLP (the two-MLP parallel baseline of FuxiCTR's zoo; Table II's base model):
two MLPs on one shared embedding with their logits summed."""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("dualmlp")
def build_dualmlp(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    simple_hidden_units: Sequence[int] = (400, 400),
    complex_hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """DualMLP: two MLPs on one shared embedding, logits summed (TF4CTR with
    ``share`` + ``sum``; Table II's base model)."""
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder=mlp_spec(simple_hidden_units),
        complex_encoder=mlp_spec(complex_hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
