"""TF4CTR (Li et al., "TF4CTR: Twin Focus Framework for CTR Prediction via
Adaptive Sample Differentiation", 2024): SSEM → simple ∥ complex encoder → DFM.

The TF Loss half of the framework lives in the objective (``loss: tf``), so
the same network also trains with plain log loss for ablations. Either
encoder can be any registered encoder (``simple_encoder: fm`` gives
TF4CTR-DeepFM, Table V); by default both are MLPs of different depth.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import EncoderSpec, build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


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
