"""CL4CTR (Wang et al., "CL4CTR: A Contrastive Learning Framework for CTR
Prediction", WSDM 2023): a base CTR model whose embeddings are also trained by
three self-supervised losses.

CL4CTR is model-agnostic: the paper plugs it into FM, DeepFM, DCN and others.
Here the base is a DNN (default, the zoo's plain deep baseline) or an FM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.models.registry import register
from tf4ctr.nn.contrastive import (
    ContrastiveModule,
    batch_features,
    feature_alignment_loss,
    field_uniformity_loss,
)
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.fm import fm_pairwise
from tf4ctr.nn.linear import FirstOrder
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput, ModelOutput, SchemaLike, table_layout

BASE_MODELS = ("dnn", "fm")


class CL4CTR(nn.Module):
    """Base CTR model + L_aux = α·L_cl + β·L_a + γ·L_u, returned as ``aux_loss``.

    The auxiliary losses (see :mod:`tf4ctr.nn.contrastive`) are computed only
    in training mode; in eval mode ``aux_loss`` is None and the forward pass is
    the base model alone, with nothing random. The authors' code combines the
    losses as α·L_cl + β·(L_a + L_u); β and γ are separate knobs here, with
    the code's defaults α = 1, β = γ = 0.01. A weight of zero skips its loss.
    The objective adds ``aux_loss`` to the click loss.

    With ``base="fm"`` and α > 0, expect slow starts: at the small initial
    embedding scale L_cl's gradient on the embeddings (∝ 1/‖e‖ through the
    encoder's LayerNorm) is orders of magnitude larger than FM's click
    gradient (∝ ‖e‖), so Adam's step on the table follows L_cl and FM's
    pairwise term stays near zero for many epochs.
    """

    def __init__(
        self,
        schema: SchemaLike,
        *,
        embedding_dim: int,
        base: str,
        hidden_units: Sequence[int],
        activation: str,
        dropout: float,
        batch_norm: bool,
        alpha: float,
        beta: float,
        gamma: float,
        mask_type: str,
        mask_ratio: float,
        cl_layers: int,
        cl_feedforward_dim: int,
    ) -> None:
        super().__init__()
        if base not in BASE_MODELS:
            raise ValueError(f"unknown base {base!r} (expected one of: {', '.join(BASE_MODELS)})")
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.base = base
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        num_numeric = len(schema.numeric)
        self.embedding = FeatureEmbedding(
            schema.vocab_sizes, num_numeric, embedding_dim, **table_layout(schema)
        )
        num_fields = self.embedding.num_fields
        if base == "dnn":
            self.mlp = MLP(
                num_fields * embedding_dim,
                hidden_units,
                activation=activation,
                dropout=dropout,
                batch_norm=batch_norm,
                output_dim=1,
            )
        else:
            self.first_order = FirstOrder(schema.vocab_sizes, num_numeric)
        self.contrastive = (
            ContrastiveModule(
                num_fields,
                embedding_dim,
                mask_type=mask_type,
                mask_ratio=mask_ratio,
                num_layers=cl_layers,
                feedforward_dim=cl_feedforward_dim,
                dropout=dropout,
            )
            if self.alpha > 0
            else None
        )

    def base_logit(self, emb: torch.Tensor, x: FeatureInput) -> torch.Tensor:
        if self.base == "dnn":
            return self.mlp(emb.flatten(1)).squeeze(-1)
        return self.first_order(x) + fm_pairwise(emb)

    def auxiliary_loss(self, emb: torch.Tensor, x: FeatureInput) -> torch.Tensor:
        """α·L_cl + β·L_a + γ·L_u for one training batch."""
        loss = emb.new_zeros(())
        if self.contrastive is not None:
            loss = loss + self.alpha * self.contrastive(emb)
        if self.beta > 0 or self.gamma > 0:
            vectors, fields = batch_features(self.embedding, x)
            num_fields = self.embedding.num_fields
            if self.beta > 0:
                loss = loss + self.beta * feature_alignment_loss(vectors, fields, num_fields)
            if self.gamma > 0:
                loss = loss + self.gamma * field_uniformity_loss(vectors, fields, num_fields)
        return loss

    def forward(self, x: FeatureInput) -> ModelOutput:
        emb = self.embedding(x)
        logit = self.base_logit(emb, x)
        if not self.training or (self.alpha == 0 and self.beta == 0 and self.gamma == 0):
            return ModelOutput(logit)
        return ModelOutput(logit, aux_loss=self.auxiliary_loss(emb, x))


@register("cl4ctr")
def build_cl4ctr(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    base: str = "dnn",
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
    alpha: float = 1.0,
    beta: float = 0.01,
    gamma: float = 0.01,
    mask_type: str = "random",
    mask_ratio: float = 0.5,
    cl_layers: int = 1,
    cl_feedforward_dim: int = 128,
) -> CL4CTR:
    """Defaults: DNN base with the zoo's MLP (400, 400, 400), ReLU, dropout 0.2,
    batch norm; CL4CTR's α = 1, β = γ = 0.01, random masking of half the
    embedding entries (the authors' code defaults) and a one-layer Transformer
    FI encoder with a 128-wide feed-forward (the code stacks three such layers). ``hidden_units``, ``activation`` and
    ``batch_norm`` apply to the DNN base only; ``dropout`` also sets the FI
    encoder's dropout."""
    return CL4CTR(
        schema,
        embedding_dim=embedding_dim,
        base=base,
        hidden_units=hidden_units,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        mask_type=mask_type,
        mask_ratio=mask_ratio,
        cl_layers=cl_layers,
        cl_feedforward_dim=cl_feedforward_dim,
    )
