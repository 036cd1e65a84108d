"""TF4CTR (Li et al., "TF4CTR: Twin Focus Framework for CTR Prediction via
Adaptive Sample Differentiation", 2024): SSEM → simple ∥ complex encoder → DFM.

The TF Loss half of the framework lives in the objective (``loss: tf``), so
the same network also trains with plain log loss for ablations. Either
encoder can be any registered encoder (``simple_encoder: fm`` gives
TF4CTR-DeepFM, Table V); by default both are MLPs of different depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tf4ctr.framework import TwinModel, build_fusion, build_ssem
from tf4ctr.models.registry import SchemaLike, register, table_layout
from tf4ctr.nn.encoder import EncoderContext, build_encoder

EncoderSpec = str | dict[str, Any] | None


def build_twin(
    schema: SchemaLike,
    *,
    embedding_dim: int,
    ssem: str,
    fusion: str,
    simple_encoder: EncoderSpec,
    complex_encoder: EncoderSpec,
    simple_embedding_dim: int | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> TwinModel:
    """Any encoder pair behind any SSEM and DFM: the one composition every
    parallel model in the zoo is made of."""
    embed = build_ssem(
        ssem,
        schema.vocab_sizes,
        len(schema.numeric),
        embedding_dim,
        simple_dim=simple_embedding_dim,
        activation=activation,
        table_layout=table_layout(schema),
    )
    shared = {"activation": activation, "dropout": dropout, "batch_norm": batch_norm}

    def context(width: int) -> EncoderContext:
        layout = table_layout(schema)
        return EncoderContext(
            embed.num_fields,
            width,
            tuple(schema.vocab_sizes),
            len(schema.numeric),
            widths=tuple(layout["widths"]),
            pooling=tuple(layout["pooling"]),
        )

    simple = build_encoder(simple_encoder, context(embed.simple_dim), shared)
    complex_ = build_encoder(complex_encoder, context(embed.complex_dim), shared)
    return TwinModel(
        embed, simple, complex_, build_fusion(fusion, simple.output_dim, complex_.output_dim)
    )


def mlp_spec(units: Sequence[int]) -> dict[str, Any]:
    """An MLP encoder spec with the given hidden units."""
    return {"name": "mlp", "hidden_units": list(units)}


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
    simple_encoder: EncoderSpec = None,
    complex_encoder: EncoderSpec = None,
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """Defaults: the paper's best Frappe setting (SER + WSF, MLP [400,400] / [400,400,400]).

    ``simple_encoder`` / ``complex_encoder`` replace the MLPs with any
    registered encoder, e.g. ``fm``, ``lr``, ``cin`` or ``{name: mlp, hidden_units: [400]}``.
    """
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem=ssem,
        fusion=fusion,
        simple_encoder=simple_encoder or mlp_spec(simple_hidden_units),
        complex_encoder=complex_encoder or mlp_spec(complex_hidden_units),
        simple_embedding_dim=simple_embedding_dim,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
