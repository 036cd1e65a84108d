"""DCN-V2 (Wang, Shivanna, Cheng, Jain, Lin, Hong & Chi, "DCN V2: Improved Deep &
Cross Network and Practical Lessons for Web-scale Learning to Rank Systems",
WWW 2021): a full-rank (or low-rank mixture) cross network combined with a
DNN, either side by side ("parallel") or one after the other ("stacked")."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.cross import CrossNetMix, CrossNetV2
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput, ModelOutput, SchemaLike, table_layout

MODEL_STRUCTURES = ("parallel", "stacked")


def model_structure_of(value: str) -> str:
    """``model_structure`` checked and lower-cased (DCNv2 and GDCN share the two layouts)."""
    structure = value.lower()
    if structure not in MODEL_STRUCTURES:
        raise ValueError(
            f"unknown model_structure {value!r} (expected one of: {', '.join(MODEL_STRUCTURES)})"
        )
    return structure


def flat_width(schema: SchemaLike, embedding_dim: int) -> int:
    """Width of all fields' embeddings side by side, what a stacked cross network reads."""
    return (len(schema.vocab_sizes) + len(schema.numeric)) * embedding_dim


class StackedDCNv2(nn.Module):
    """Embedding → cross network → DNN → logit (DCN-V2 Fig. 1b).

    The DNN reads the crosses, so there is no pair of parallel encoders and
    therefore no z_s / z_c: ``loss: tf`` does not apply to this structure.
    """

    def __init__(
        self,
        schema: SchemaLike,
        *,
        embedding_dim: int,
        cross: nn.Module,
        hidden_units: Sequence[int],
        activation: str,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(
            schema.vocab_sizes, len(schema.numeric), embedding_dim, **table_layout(schema)
        )
        self.cross = cross
        self.mlp = MLP(
            self.embedding.num_fields * embedding_dim,
            hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            output_dim=1,
        )

    def forward(self, x: FeatureInput) -> ModelOutput:
        crossed = self.cross(self.embedding(x).flatten(1))
        return ModelOutput(self.mlp(crossed).squeeze(-1))


@register("dcnv2")
def build_dcnv2(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    model_structure: str = "parallel",
    use_low_rank_mixture: bool = False,
    num_cross_layers: int = 3,
    low_rank: int = 32,
    num_experts: int = 4,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> nn.Module:
    """DCN-V2, parallel (default) or stacked, full-rank or low-rank mixture cross.

    ``parallel`` is ``share`` + ``crossnetv2``/``crossnetmix`` ∥ ``mlp`` + ``cf``
    (the paper's parallel combination concatenates both outputs into the final
    logistic layer, which is the ``cf`` fusion). It is the default because the
    paper finds neither structure better across datasets, FuxiCTR/BARS default
    to it too, and it is a twin model, so the TF Loss applies to it with z_s =
    cross side, z_c = DNN. ``stacked`` returns :class:`StackedDCNv2`.
    ``low_rank`` and ``num_experts`` are used only with ``use_low_rank_mixture``.
    """
    structure = model_structure_of(model_structure)
    if structure == "stacked":
        width = flat_width(schema, embedding_dim)
        cross: nn.Module = (
            CrossNetMix(width, num_cross_layers, low_rank, num_experts)
            if use_low_rank_mixture
            else CrossNetV2(width, num_cross_layers)
        )
        return StackedDCNv2(
            schema,
            embedding_dim=embedding_dim,
            cross=cross,
            hidden_units=hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
    cross_spec = (
        {
            "name": "crossnetmix",
            "num_layers": num_cross_layers,
            "low_rank": low_rank,
            "num_experts": num_experts,
        }
        if use_low_rank_mixture
        else {"name": "crossnetv2", "num_layers": num_cross_layers}
    )
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="share",
        fusion="cf",
        simple_encoder=cross_spec,
        complex_encoder=mlp_spec(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
