"""Factorization Machines (Rendle, "Factorization Machines", ICDM 2010).

FM models every pairwise interaction as the inner product of two latent
vectors, so pairs never seen together in training still get a weight. The
identity Σ_{i<j} ⟨e_i, e_j⟩ = ½ Σ_k ((Σ_i e_ik)² − Σ_i e_ik²) makes it linear in
the number of fields instead of quadratic — the reason FM is the cheap
"explicit" half of DeepFM.
"""

from __future__ import annotations

import torch

from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.linear import FirstOrder
from tf4ctr.nn.types import FeatureInput


def bi_interaction(emb: torch.Tensor) -> torch.Tensor:
    """½((Σ_i e_i)² − Σ_i e_i²): the pairwise products summed per dimension, ``[B, d]``.

    Summing this vector over d gives FM's second-order term; keeping it as a
    vector (He & Chua's bi-interaction pooling, SIGIR 2017) gives a fusion
    layer something wider than one number to read.
    """
    square_of_sum = emb.sum(dim=1).pow(2)
    sum_of_square = emb.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_square)


def fm_pairwise(emb: torch.Tensor) -> torch.Tensor:
    """FM's second-order term Σ_{i<j} ⟨e_i, e_j⟩ for ``emb [B, F, d]``, ``[B]``."""
    return bi_interaction(emb).sum(dim=-1)


@register_encoder("fm")
class FMEncoder(Encoder):
    """A full FM: its own first-order LR weights plus the pairwise term on ``emb``.

    The logit is the complete FM of Rendle (2010) (bias + linear + pairwise),
    as DeepFM's FM component is; the hidden representation is the
    bi-interaction vector ``[B, d]``, which concat/MoE/voting fusions read.
    """

    def __init__(self, ctx: EncoderContext) -> None:
        super().__init__()
        self.first_order = FirstOrder(ctx.vocab_sizes, ctx.num_numeric, **ctx.table_layout)
        self.output_dim = ctx.embedding_dim

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = bi_interaction(emb)
        return hidden, self.first_order(x) + hidden.sum(dim=-1)
