"""DeepFM (Guo, Tang, Ye, Li & He, "DeepFM: A Factorization-Machine based Neural
Network for CTR Prediction", IJCAI 2017): an FM and a DNN on one shared
embedding, logits summed, so low- and high-order interactions are learnt end
to end without Wide & Deep's hand-made features."""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("deepfm")
def build_deepfm(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """DeepFM as ``share`` + ``fm`` ∥ ``mlp`` + ``sum``.

    Sharing the embedding between FM and DNN is the paper's point (§2.1), so
    the SSEM is ``share``; the FM keeps its own first-order weights, as in the
    paper. z_s is the full FM logit (bias + first order + pairwise), z_c the DNN's.
    """
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder="fm",
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
