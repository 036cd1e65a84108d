"""GDCN (Wang, Gu, Li, Lu, Zhang & Gu, "Towards Deeper, Lighter and Interpretable
Cross Network for CTR Prediction", CIKM 2023): a gated cross network combined
with a DNN, side by side (GDCN-P, "parallel") or one after the other (GDCN-S,
"stacked"). The paper's field-level dimension optimisation is a separate
procedure for choosing per-field embedding widths and is not part of the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.dcnv2 import StackedDCNv2, flat_width, model_structure_of
from tf4ctr.models.registry import register
from tf4ctr.nn.gdcn import GatedCrossNetwork
from tf4ctr.nn.types import SchemaLike


@register("gdcn")
def build_gdcn(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    model_structure: str = "parallel",
    num_cross_layers: int = 3,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.5,
    batch_norm: bool = True,
) -> nn.Module:
    """GDCN-P (default) or GDCN-S.

    ``parallel`` is ``share`` + ``gated_cross`` ∥ ``mlp`` + ``cf``: GDCN-P feeds
    [cross output ‖ DNN output] to one linear layer, which is the ``cf`` fusion, and
    it is a twin model, so ``loss: tf`` applies with z_s = the gated cross network,
    z_c = the DNN. ``stacked`` puts the DNN on the cross network's output
    (:class:`tf4ctr.models.dcnv2.StackedDCNv2` with the gated cross network inside;
    no z_s / z_c). Defaults are the authors' code's, used for every dataset,
    Frappe included: embedding 16, 3 gated cross layers, DNN [400, 400, 400] of
    Linear → batch norm → ReLU → dropout 0.5. Their embeddings start Xavier-uniform;
    here, as everywhere in the zoo, at N(0, 1e-4²), so the cross terms start near zero.
    """
    if num_cross_layers < 1:
        raise ValueError(f"num_cross_layers must be >= 1, got {num_cross_layers}")
    structure = model_structure_of(model_structure)
    if structure == "stacked":
        width = flat_width(schema, embedding_dim)
        return StackedDCNv2(
            schema,
            embedding_dim=embedding_dim,
            cross=GatedCrossNetwork(width, num_cross_layers),
            hidden_units=hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="cf",
        simple_encoder={"name": "gated_cross", "num_layers": num_cross_layers},
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
