"""The stream of FinalMLP (Mao, Zhu, Su, Cai, Li & Dong, "FinalMLP: An Enhanced
Two-Stream MLP Model for CTR Prediction", AAAI 2023): an MLP whose input is the
flat embedding re-weighted by a stream-specific feature-selection gate.

FinalMLP runs two such streams in parallel and fuses them with a bilinear layer
(:class:`tf4ctr.models.finalmlp.BilinearStreamFusion`). Each stream is an
encoder here (``gated_mlp``), so either can also be a side of TF4CTR.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput


class FeatureSelectionGate(nn.Module):
    """g = 2·σ(MLP(c)) ``[B or 1, F·d]``, FinalMLP's context-aware feature gate.

    The context c is the embedding of the chosen conditional fields (e.g. the user
    for one stream and the item for the other), or, with none, one learned vector
    shared by every sample. The factor 2 centres the gate on 1, so a stream starts
    from (almost) the plain embedding and learns to damp or boost each entry.

    Conditional fields get their own embedding table, as in FuxiCTR (whose BARS
    Frappe run reports 253,392 parameters, which counts these tables): the gate's
    view of the user need not be the streams' view of it. Being a FeatureEmbedding,
    the table is under the objective's embedding L2 like every other table.

    Args:
        output_dim: F·d, the width of the flat embedding the gate multiplies.
        embedding_dim: width of the context embedding.
        hidden_units: the gate MLP's hidden layers (ReLU, no batch norm, no dropout).
        context_fields: positions of the conditional fields among the vocabulary
            fields (0-based, in column order); empty: a learned context vector.
        vocab_sizes, widths, pooling: the vocabulary fields, as in FeatureEmbedding.
    """

    def __init__(
        self,
        output_dim: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        *,
        context_fields: Sequence[int] = (),
        vocab_sizes: Sequence[int] = (),
        widths: Sequence[int] | None = None,
        pooling: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        names = [f for f in context_fields if not isinstance(f, int) or isinstance(f, bool)]
        if names:
            raise ValueError(
                f"context_fields are 0-based positions of vocabulary fields, got {names[0]!r} "
                "(an encoder is not told field names)"
            )
        fields = list(context_fields)
        widths = list(widths) if widths is not None else [1] * len(vocab_sizes)
        pooling = list(pooling) if pooling is not None else ["sum"] * len(vocab_sizes)
        bad = [f for f in fields if not 0 <= f < len(vocab_sizes)]
        if bad:
            raise ValueError(
                f"context field {bad[0]} is not a vocabulary field (there are "
                f"{len(vocab_sizes)}, numbered from 0)"
            )
        if len(set(fields)) != len(fields):
            raise ValueError(f"context fields repeat: {fields}")
        self.context: FeatureEmbedding | None = None
        self.vector: nn.Parameter | None = None
        if fields:
            starts = [sum(widths[:f]) for f in range(len(widths))]
            columns = [c for f in fields for c in range(starts[f], starts[f] + widths[f])]
            self.register_buffer(
                "columns", torch.tensor(columns, dtype=torch.long), persistent=False
            )
            self.context = FeatureEmbedding(
                [vocab_sizes[f] for f in fields],
                0,
                embedding_dim,
                widths=[widths[f] for f in fields],
                pooling=[pooling[f] for f in fields],
            )
            input_dim = len(fields) * embedding_dim
        else:
            # Not zero, unlike FuxiCTR's: a zero context would leave the gate's first
            # weight matrix without gradient on the first step.
            self.vector = nn.Parameter(torch.empty(1, embedding_dim).normal_(std=1e-4))
            input_dim = embedding_dim
        self.mlp = MLP(input_dim, hidden_units, activation="relu", output_dim=output_dim)

    def forward(self, x: FeatureInput) -> torch.Tensor:
        if self.context is None:
            assert self.vector is not None
            context = self.vector  # one gate for the whole batch, broadcast by the caller
        else:
            picked = FeatureInput(x.categorical.index_select(1, self.columns), x.numeric)
            context = self.context(picked).flatten(1)
        return 2.0 * torch.sigmoid(self.mlp(context))


@register_encoder("gated_mlp")
class GatedMLPEncoder(Encoder):
    """One FinalMLP stream: MLP(e ⊙ g) with g from :class:`FeatureSelectionGate`, plus a logit head.

    The head is the stream's own linear term w_iᵀ o_i + b_i of FinalMLP's fusion,
    so FinalMLP's fused logit is z_s + z_c + the bilinear term, and TF Loss
    reads each stream's share of it. Defaults: one layer of 400 units and a gate of
    [400], the widest stream of FinalMLP's BARS Frappe setting.

    Args:
        hidden_units: the stream MLP's layers.
        gate_hidden_units: the gate MLP's hidden layers.
        context_fields: positions (0-based) of the vocabulary fields the gate is
            conditioned on; empty: a learned context vector. Positions, not names,
            because an encoder is sized from an :class:`EncoderContext`, which has none.
        feature_selection: False drops the gate (the paper's "w/o FS" ablation).
    """

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        hidden_units: Sequence[int] = (400,),
        gate_hidden_units: Sequence[int] = (400,),
        context_fields: Sequence[int] = (),
        feature_selection: bool = True,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if not feature_selection and context_fields:
            raise ValueError("context_fields need feature_selection: true")
        width = ctx.num_fields * ctx.embedding_dim
        self.gate = (
            FeatureSelectionGate(
                width,
                ctx.embedding_dim,
                gate_hidden_units,
                context_fields=context_fields,
                vocab_sizes=ctx.vocab_sizes,
                widths=ctx.widths,
                pooling=ctx.pooling,
            )
            if feature_selection
            else None
        )
        self.mlp = MLP(
            width, hidden_units, activation=activation, dropout=dropout, batch_norm=batch_norm
        )
        self.output_dim = self.mlp.output_dim
        self.head = nn.Linear(self.output_dim, 1)
        nn.init.xavier_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        flat = emb.flatten(1)
        if self.gate is not None:
            flat = flat * self.gate(x)
        hidden = self.mlp(flat)
        return hidden, self.head(hidden).squeeze(-1)
