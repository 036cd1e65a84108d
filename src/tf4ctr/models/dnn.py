"""DNN: embedding → MLP → logit, the plain deep baseline (Covington et al., 2016)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from tf4ctr.models.registry import register
from tf4ctr.nn import MLP, FeatureEmbedding, FeatureInput, ModelOutput
from tf4ctr.nn.types import SchemaLike, table_layout


class DNN(nn.Module):
    """A single MLP over the concatenated field embeddings."""

    def __init__(
        self,
        schema: SchemaLike,
        *,
        embedding_dim: int,
        hidden_units: Sequence[int],
        activation: str,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(
            schema.vocab_sizes, len(schema.numeric), embedding_dim, **table_layout(schema)
        )
        self.mlp = MLP(
            self.embedding.num_fields * embedding_dim,
            hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            output_dim=1,
        )

    def forward(self, x: FeatureInput) -> ModelOutput:
        return ModelOutput(self.mlp.forward_embedded(self.embedding, x).squeeze(-1))


@register("dnn")
def build_dnn(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> DNN:
    return DNN(
        schema,
        embedding_dim=embedding_dim,
        hidden_units=hidden_units,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
