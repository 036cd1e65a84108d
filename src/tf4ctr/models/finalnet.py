"""FinalNet (Zhu et al., "FINAL: Factorized Interaction Layer for CTR Prediction",
SIGIR 2023): blocks of factorized interaction layers in place of MLPs, in a
one-block (1B) or a two-block (2B) network.

2B runs a block on a field-gated embedding beside a block on the plain one,
averages their logits, and distils the average back into each block. Its two
blocks are a natural simple/complex pair, so it returns them as z_s and z_c and
``loss: tf`` applies to it; 1B has one block and no pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tf4ctr.models.registry import register
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.finalnet import FieldGate, FinalBlock
from tf4ctr.nn.types import FeatureInput, ModelOutput, SchemaLike, table_layout

BLOCK_TYPES = ("1B", "2B")


def _head(width: int) -> nn.Linear:
    head = nn.Linear(width, 1)
    nn.init.xavier_normal_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class FinalNet(nn.Module):
    """y₁ = head₁(Block₁(gate(e))) (1B: the logit), and under 2B also
    y₂ = head₂(Block₂(e)) and logit = (y₁ + y₂) / 2.

    While training, 2B adds the paper's self-distillation as ``aux_loss``:
    BCE(σ(y₁), σ(logit)) + BCE(σ(y₂), σ(logit)) with the average's probability
    detached, so each block is pulled towards the ensemble and the ensemble is
    trained by the click loss alone. With the field gate off, block 1 reads the
    plain embedding too.
    """

    def __init__(
        self,
        schema: SchemaLike,
        *,
        embedding_dim: int,
        block_type: str,
        field_gate: bool,
        block1: dict,
        block2: dict,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(
            schema.vocab_sizes, len(schema.numeric), embedding_dim, **table_layout(schema)
        )
        num_fields = self.embedding.num_fields
        width = num_fields * embedding_dim
        self.field_gate = FieldGate(num_fields) if field_gate else None
        self.block1 = FinalBlock(2 * width if field_gate else width, **block1)
        self.head1 = _head(self.block1.output_dim)
        self.block2: FinalBlock | None = None
        self.head2: nn.Linear | None = None
        if block_type == "2B":
            self.block2 = FinalBlock(width, **block2)
            self.head2 = _head(self.block2.output_dim)

    def forward(self, x: FeatureInput) -> ModelOutput:
        emb = self.embedding(x)
        gated = self.field_gate(emb) if self.field_gate is not None else emb
        y1 = self.head1(self.block1(gated.flatten(1))).squeeze(-1)
        if self.block2 is None or self.head2 is None:
            return ModelOutput(y1)
        y2 = self.head2(self.block2(emb.flatten(1))).squeeze(-1)
        logit = 0.5 * (y1 + y2)
        aux = None
        if self.training:
            target = torch.sigmoid(logit).detach()
            aux = F.binary_cross_entropy_with_logits(
                y1, target
            ) + F.binary_cross_entropy_with_logits(y2, target)
        return ModelOutput(logit, z_s=y1, z_c=y2, aux_loss=aux)


@register("finalnet")
def build_finalnet(
    schema: SchemaLike,
    *,
    embedding_dim: int = 10,
    block_type: str = "2B",
    field_gate: bool = True,
    block1_hidden_units: Sequence[int] = (400, 400),
    block1_activation: str = "relu",
    block1_dropout: float = 0.1,
    block2_hidden_units: Sequence[int] = (400,),
    block2_activation: str = "relu",
    block2_dropout: float = 0.1,
    batch_norm: bool = True,
    residual_type: str = "concat",
) -> FinalNet:
    """FinalNet, two blocks (``block_type: 2B``, default) or one (``1B``; the block2 keys
    are then unused).

    Defaults: BARS's Frappe_x1 FinalNet_2B (leaderboard 0.9857): embedding 10, field
    gate on block 1, blocks [400, 400] and [400] with ReLU, dropout 0.1 and batch
    norm, ``concat`` residual. BARS's FinalNet_1B on Frappe used block 1 = [400, 400],
    dropout 0.2 and no field gate. ``residual_type: sum`` keeps u + u ⊙ v instead of
    [u ‖ u ⊙ v] in each layer; under ``concat`` every layer width must be even.
    """
    kind = block_type.upper()
    if kind not in BLOCK_TYPES:
        raise ValueError(
            f"unknown block_type {block_type!r} (expected one of: {', '.join(BLOCK_TYPES)})"
        )
    shared = {"batch_norm": batch_norm, "residual_type": residual_type}
    return FinalNet(
        schema,
        embedding_dim=embedding_dim,
        block_type=kind,
        field_gate=field_gate,
        block1={
            "hidden_units": block1_hidden_units,
            "activation": block1_activation,
            "dropout": block1_dropout,
            **shared,
        },
        block2={
            "hidden_units": block2_hidden_units,
            "activation": block2_activation,
            "dropout": block2_dropout,
            **shared,
        },
    )
