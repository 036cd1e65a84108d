"""TF4CTR around other base models (Li et al., "TF4CTR: Twin Focus Framework for
CTR Prediction via Adaptive Sample Differentiation", 2024, Table V).

The paper shows the framework is model-agnostic by swapping the simple
encoder of TF4CTR for the explicit part of a classic model: FM (DeepFM), LR
(Wide & Deep) or CIN (xDeepFM), with an MLP as the complex encoder. Each
builder here is :func:`build_tf4ctr` with a different simple encoder, so the
SSEM, fusion and TF Loss code paths are the same ones TF4CTR uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.ssem import SSEM_TYPES
from tf4ctr.models.registry import register
from tf4ctr.models.tf4ctr import build_tf4ctr
from tf4ctr.nn.types import SchemaLike


@register("tf4ctr_deepfm")
def build_tf4ctr_deepfm(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    ssem: str = "ser",
    fusion: str = "wsf",
    complex_hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """TF4CTR-DeepFM: simple encoder = FM (with its first-order term), complex = MLP.

    Under ``ser`` the FM reads the simple table, which is embedding_dim // 2 wide.
    """
    return build_tf4ctr(
        schema,
        embedding_dim=embedding_dim,
        ssem=ssem,
        fusion=fusion,
        complex_hidden_units=complex_hidden_units,
        simple_encoder="fm",
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )


@register("tf4ctr_widedeep")
def build_tf4ctr_widedeep(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    ssem: str = "ser",
    fusion: str = "wsf",
    complex_hidden_units: Sequence[int] = (400, 400, 400),
    linear_from_embedding: bool = True,
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """TF4CTR-WideDeep: simple encoder = LR, complex = MLP.

    ``linear_from_embedding`` (default True) makes the LR read its weights off
    the SSEM's simple-side embedding, so sample selection (SER's own table,
    GM's gate, MMoE's mixture) reaches the LR as the framework intends. With
    False the LR keeps its own table over raw ids, as the authors' public
    code does (where the SSEM then shapes only the DNN's input); that is
    refused under ``ser``, whose simple table nothing would read.
    """
    key = SSEM_TYPES.canonical(ssem)
    if key == "ser" and not linear_from_embedding:
        raise ValueError(
            "ssem 'ser' gives the simple encoder its own embedding table, which an LR over "
            "raw ids never reads; set linear_from_embedding: true or pick another ssem"
        )
    return build_tf4ctr(
        schema,
        embedding_dim=embedding_dim,
        ssem=ssem,
        fusion=fusion,
        complex_hidden_units=complex_hidden_units,
        simple_encoder={"name": "lr", "from_embedding": linear_from_embedding},
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )


@register("tf4ctr_xdeepfm")
def build_tf4ctr_xdeepfm(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    ssem: str = "ser",
    fusion: str = "wsf",
    cin_hidden_units: Sequence[int] = (16, 16, 16),
    complex_hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """TF4CTR-xDeepFM: simple encoder = CIN with its LR term, complex = MLP.

    The LR term sits inside z_s (the authors' code adds it to the fused logit
    instead, outside both encoders); here it is part of the simple side, so
    the TF Loss and the fusion weigh LR + CIN together, as in ``xdeepfm``.
    """
    return build_tf4ctr(
        schema,
        embedding_dim=embedding_dim,
        ssem=ssem,
        fusion=fusion,
        complex_hidden_units=complex_hidden_units,
        simple_encoder={
            "name": "cin",
            "cin_hidden_units": list(cin_hidden_units),
            "with_linear": True,
        },
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
