"""AutoInt+ (Song et al., "AutoInt: Automatic Feature Interaction Learning via
Self-Attentive Neural Networks", CIKM 2019): self-attentive interacting layers
in parallel with a DNN on one shared embedding, logits summed.

The paper's AutoInt+ is exactly a twin model: the attention side is the
explicit (simple) encoder z_s, the DNN the implicit (complex) one z_c, so it
is composed with ``build_twin`` and TF Loss applies to it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("autoint", "autoint_plus", "autoint+")
def build_autoint(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    attention_layers: int = 3,
    num_heads: int = 2,
    attention_dim: int = 32,
    use_residual: bool = True,
    use_scale: bool = True,
    layer_norm: bool = False,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """AutoInt+ = ``share`` SSEM + attention encoder ∥ MLP + ``sum`` fusion.

    Attention defaults are the AutoInt paper's (3 layers, 2 heads, 32 units
    per head; see :class:`tf4ctr.nn.attention.AttentionEncoder`); the DNN
    uses the zoo-wide defaults.
    """
    attention = {
        "name": "attention",
        "attention_layers": attention_layers,
        "num_heads": num_heads,
        "attention_dim": attention_dim,
        "use_residual": use_residual,
        "use_scale": use_scale,
        "layer_norm": layer_norm,
    }
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="sum",
        simple_encoder=attention,
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
