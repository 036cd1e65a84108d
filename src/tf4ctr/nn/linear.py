"""The first-order (logistic-regression) term of CTR models.

Wide & Deep (Cheng et al., "Wide & Deep Learning for Recommender Systems",
DLRS @ RecSys 2016), DeepFM (Guo et al., IJCAI 2017) and xDeepFM (Lian et al.,
KDD 2018) all add a plain linear model over the raw features next to their
interaction part: it memorises per-value click rates cheaply, which the
interaction part then need not learn. It owns its weights (one scalar per
feature value) instead of reading the shared embedding, as in those papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.types import FeatureInput


class FirstOrder(nn.Module):
    """Σ_f w_{f, x_f} (+ Σ_n w_n · value_n) + b, i.e. LR over one-hot features.

    The weights are a dim-1 :class:`FeatureEmbedding`, so one lookup serves
    every field, and numeric fields get a weight scaled by their value.
    Being a FeatureEmbedding, the table is covered by the objective's
    embedding L2 penalty, like FuxiCTR's LR layer under its embedding
    regulariser.

    Args:
        vocab_sizes: rows per categorical field.
        num_numeric: numeric fields kept as numbers.
        bias: add a global bias; models whose logit already has a bias
            elsewhere switch it off, so no parameter is redundant.
        widths, pooling: sequence fields, as in :class:`FeatureEmbedding`.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        *,
        bias: bool = True,
        widths: Sequence[int] | None = None,
        pooling: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.weights = FeatureEmbedding(vocab_sizes, num_numeric, 1, widths=widths, pooling=pooling)
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, x: FeatureInput) -> torch.Tensor:
        """The first-order logit, ``[B]``."""
        logit = self.weights(x).sum(dim=(1, 2))
        return logit if self.bias is None else logit + self.bias


@register_encoder("lr")
class LREncoder(Encoder):
    """Logistic regression as an encoder (the "wide" part of Wide & Deep).

    Its hidden representation is its own logit ``[B, 1]``: an LR has nothing
    richer to offer a concat/MoE/voting fusion.

    Args:
        from_embedding: read the first-order weights off the encoder's input
            embedding (logit = Σ_f ⟨w_f, e_f⟩ + b) instead of keeping a table of
            its own. Still a linear model in the one-hot features when the
            embedding is a plain lookup, but it lets a TF4CTR sample-selection
            module (SER's simple table, GM's gate, MMoE's mixture) shape the
            LR's input; with the default (own table, raw ids) the SSEM output
            for this side would go unused.
    """

    def __init__(self, ctx: EncoderContext, *, from_embedding: bool = False) -> None:
        super().__init__()
        self.output_dim = 1
        self.from_embedding = from_embedding
        if from_embedding:
            self.proj = nn.Linear(ctx.num_fields * ctx.embedding_dim, 1)
            nn.init.xavier_normal_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)
        else:
            self.first_order = FirstOrder(ctx.vocab_sizes, ctx.num_numeric, **ctx.table_layout)

    def logit_only_parameters(self) -> list[nn.Parameter]:
        return []  # the hidden output is the logit itself

    @property
    def reads_embedding(self) -> bool:  # type: ignore[override]
        return self.from_embedding

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        if self.from_embedding:
            logit = self.proj(emb.flatten(1)).squeeze(-1)
        else:
            logit = self.first_order(x)
        return logit.unsqueeze(-1), logit
