"""DCN (Wang, Fu, Fu & Wang, "Deep & Cross Network for Ad Click Predictions",
ADKDD 2017): a cross network of bounded-degree explicit crosses beside a DNN,
their outputs concatenated into one final logistic layer."""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("dcn")
def build_dcn(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    num_cross_layers: int = 3,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """DCN as ``share`` + ``crossnet`` ∥ ``mlp`` + ``cf``.

    The paper's combination layer is a single linear layer over
    [x_L ‖ h_deep] (§2.3), which is exactly the ``cf`` fusion, so the fused
    logit matches DCN. Each encoder also has its own head, used only for
    z_s / z_c (the TF Loss and the analyses); under plain log loss those two
    heads get no gradient, as in any ``cf``-fused twin model.
    """
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="cf",
        simple_encoder={"name": "crossnet", "num_layers": num_cross_layers},
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
