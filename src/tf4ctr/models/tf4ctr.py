"""TF4CTR (Li et al., "TF4CTR: Twin Focus Framework for CTR Prediction via
Adaptive Sample Differentiation", 2024): SSEM → MLP_s ∥ MLP_c → DFM.

The TF Loss half of the framework lives in the objective (``loss: tf``), so
the same network also trains with plain log loss for ablations.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import MLPEncoder, TwinModel, build_fusion, build_ssem
from tf4ctr.models.registry import SchemaLike, register


def build_twin_mlp(
    schema: SchemaLike,
    *,
    embedding_dim: int,
    ssem: str,
    fusion: str,
    simple_embedding_dim: int | None,
    simple_hidden_units: Sequence[int],
    complex_hidden_units: Sequence[int],
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> TwinModel:
    """Two MLP encoders of different depth behind any SSEM and DFM."""
    embed = build_ssem(
        ssem,
        schema.vocab_sizes,
        len(schema.numeric),
        embedding_dim,
        simple_dim=simple_embedding_dim,
        activation=activation,
    )

    def encoder(width: int, units: Sequence[int]) -> MLPEncoder:
        return MLPEncoder(
            embed.num_fields,
            width,
            units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )

    simple = encoder(embed.simple_dim, simple_hidden_units)
    complex_ = encoder(embed.complex_dim, complex_hidden_units)
    return TwinModel(embed, simple, complex_, build_fusion(fusion, simple.output_dim, complex_.output_dim))


@register("tf4ctr")
def build_tf4ctr(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    ssem: str = "ser",
    fusion: str = "wsf",
    simple_embedding_dim: int | None = None,
    simple_hidden_units: Sequence[int] = (400, 400),
    complex_hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """Defaults: the paper's best Frappe setting (SER + WSF, [400,400] / [400,400,400])."""
    return build_twin_mlp(
        schema,
        embedding_dim=embedding_dim,
        ssem=ssem,
        fusion=fusion,
        simple_embedding_dim=simple_embedding_dim,
        simple_hidden_units=simple_hidden_units,
        complex_hidden_units=complex_hidden_units,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )


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
    return build_twin_mlp(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_embedding_dim=None,
        simple_hidden_units=simple_hidden_units,
        complex_hidden_units=complex_hidden_units,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
