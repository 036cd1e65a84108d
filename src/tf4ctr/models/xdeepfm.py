"""xDeepFM (Lian, Zhou, Zhang, Chen, Xie & Sun, "xDeepFM: Combining Explicit
and Implicit Feature Interactions for Recommender Systems", KDD 2018): LR +
CIN (explicit, vector-wise interactions) + DNN (implicit, bit-wise ones)."""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("xdeepfm")
def build_xdeepfm(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    cin_hidden_units: Sequence[int] = (16, 16, 16),
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """xDeepFM as ``share`` + ``cin`` (with its LR term) ∥ ``mlp`` + ``sum``.

    The paper's output unit is σ(w_linᵀa + w_dnnᵀx_dnn + w_cinᵀp⁺ + b) (Eq. 8);
    with the LR term inside the CIN encoder that is z_s + z_c, and the TF Loss
    sees LR + CIN together as the simple side. ``cin_hidden_units`` (16, 16, 16)
    is the setting FuxiCTR/BARS commonly use on Frappe-sized data.
    """
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder={
            "name": "cin",
            "cin_hidden_units": list(cin_hidden_units),
            "with_linear": True,
        },
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
