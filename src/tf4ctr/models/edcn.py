"""EDCN (Chen et al., "Enhancing Explicit and Implicit Feature Interactions via
Information Sharing for Parallel Deep CTR Models", CIKM 2021).

A parallel cross + deep network whose branches exchange information after
every layer, so unlike DCN it cannot be composed from two independent
encoders with ``build_twin``: it is one module.
"""

from __future__ import annotations

import torch
from torch import nn

from tf4ctr.models.registry import register
from tf4ctr.nn.edcn import BridgeModule, CrossLayer, RegulationModule
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput, ModelOutput, SchemaLike, table_layout


class EDCN(nn.Module):
    """Per layer l (all widths D = F·d):

        x̃_l, h̃_l = Regulation_l(f_{l-1})        (f_0 = the flat embedding)
        x_l = Cross_l(x̃_1, x̃_l),  h_l = Deep_l(h̃_l)
        f_l = Bridge_l(x_l, h_l)

    and the logit is a Linear over [x_L ‖ h_L ‖ f_L], as in the paper. The
    cross layers keep x̃_1, the regulated embedding of the first layer, as
    their x_0. A deep layer is Linear → activation → dropout (FuxiCTR's order;
    the authors' MindSpore code applies the activation before the Linear);
    batch norm sits in the regulation module, on both branches' inputs, as in
    both codes (see :class:`RegulationModule`). With the Hadamard bridge the
    stacked products shift those inputs' distribution quickly early in
    training, so the running statistics lag and validation AUC trails the
    training loss for the first epochs; without batch norm the 1/F gates on
    small embeddings make the products vanish and the model barely learns.

    ``z_s`` and ``z_c`` come from two extra Linear heads, on x_L (explicit,
    the simple side) and on h_L (implicit, the complex side). They exist only
    so that the Twin Focus loss can be applied to EDCN; the fused logit does
    not use them, so with plain log loss these two heads get no gradient and
    stay at their initial values. Their gradient, under TF loss, also reaches
    the shared layers below — which is the point of TF loss.
    """

    def __init__(
        self,
        schema: SchemaLike,
        *,
        embedding_dim: int,
        num_cross_layers: int,
        bridge_type: str,
        temperature: float,
        activation: str,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        if num_cross_layers < 1:
            raise ValueError(f"num_cross_layers must be >= 1, got {num_cross_layers}")
        self.embedding = FeatureEmbedding(
            schema.vocab_sizes, len(schema.numeric), embedding_dim, **table_layout(schema)
        )
        num_fields = self.embedding.num_fields
        width = num_fields * embedding_dim
        self.regulations = nn.ModuleList(
            RegulationModule(
                num_fields, embedding_dim, temperature=temperature, batch_norm=batch_norm
            )
            for _ in range(num_cross_layers)
        )
        self.cross_layers = nn.ModuleList(CrossLayer(width) for _ in range(num_cross_layers))
        self.deep_layers = nn.ModuleList(
            MLP(width, [width], activation=activation, dropout=dropout)
            for _ in range(num_cross_layers)
        )
        self.bridges = nn.ModuleList(
            BridgeModule(width, bridge_type) for _ in range(num_cross_layers)
        )
        self.head = nn.Linear(3 * width, 1)
        self.simple_head = nn.Linear(width, 1)
        self.complex_head = nn.Linear(width, 1)

    def logit_only_parameters(self) -> list[nn.Parameter]:
        """The two heads that only z_s and z_c read (see the class docstring)."""
        return [*self.simple_head.parameters(), *self.complex_head.parameters()]

    def forward(self, x: FeatureInput) -> ModelOutput:
        fused = self.embedding(x).flatten(1)
        x0: torch.Tensor | None = None
        cross = deep = fused  # rebound by the first layer (there is always one)
        for regulate, cross_layer, deep_layer, bridge in zip(
            self.regulations, self.cross_layers, self.deep_layers, self.bridges, strict=True
        ):
            cross_in, deep_in = regulate(fused)
            if x0 is None:
                x0 = cross_in
            cross = cross_layer(x0, cross_in)
            deep = deep_layer(deep_in)
            fused = bridge(cross, deep)
        logit = self.head(torch.cat([cross, deep, fused], dim=-1)).squeeze(-1)
        return ModelOutput(
            logit,
            z_s=self.simple_head(cross).squeeze(-1),
            z_c=self.complex_head(deep).squeeze(-1),
        )


@register("edcn")
def build_edcn(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    num_cross_layers: int = 3,
    bridge_type: str = "hadamard_product",
    temperature: float = 1.0,
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> EDCN:
    """Defaults: 3 cross/deep layers, Hadamard bridge and τ = 1 (the paper's
    and FuxiCTR's defaults); embedding 16, ReLU, dropout 0.2 and batch norm as
    in every model of the zoo. The layer width is fixed at F·d by design."""
    return EDCN(
        schema,
        embedding_dim=embedding_dim,
        num_cross_layers=num_cross_layers,
        bridge_type=bridge_type,
        temperature=temperature,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
