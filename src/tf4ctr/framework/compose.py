"""The one composition every parallel model is made of: SSEM -> simple || complex -> DFM.

TF4CTR uses it with two MLPs of different depth; the zoo's baselines (DeepFM, DCN, AutoInt+,
...) with their own encoder pairs, so TF Loss and the DFM apply to any of them by
configuration alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tf4ctr.framework.fusion import build_fusion
from tf4ctr.framework.ssem import build_ssem
from tf4ctr.framework.twin import TwinModel
from tf4ctr.nn.encoder import EncoderContext, build_encoder
from tf4ctr.nn.types import SchemaLike, table_layout

__all__ = ["EncoderSpec", "build_twin", "mlp_spec"]

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
