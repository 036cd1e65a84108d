"""Wide & Deep (Cheng et al., "Wide & Deep Learning for Recommender Systems",
DLRS @ RecSys 2016): an LR ("wide", memorisation) beside a DNN ("deep",
generalisation), trained jointly with their logits summed."""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("widedeep")
def build_widedeep(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """Wide & Deep as ``share`` + ``lr`` ∥ ``mlp`` + ``sum``.

    The wide part is LR on the raw features only: the paper's hand-made
    cross-product transformations are dataset-specific feature engineering,
    and benchmark implementations (FuxiCTR/BARS) leave them out as well. The
    LR has its own weight table, so under ``share`` the embedding feeds the
    deep part alone. z_s is the wide logit, z_c the deep one, so ``loss: tf``
    treats the LR as the simple encoder.
    """
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder="lr",
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
