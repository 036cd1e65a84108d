"""The Logarithmic Transformation Layer of AFN (Cheng, Shen and Huang, "Adaptive
Factorization Network: Learning Adaptive-Order Feature Interactions", AAAI 2020).

A cross feature Π_i e_i^{w_i} with learnable, real-valued orders w_i is, in log
space, just a linear layer: exp(Σ_i w_i ln|e_i|). So AFN learns which fields
to combine AND with what powers, instead of enumerating all crosses up to a
fixed order as FM/HOFM do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput


class LogarithmicTransformation(nn.Module):
    """``[B, F, d] -> [B, N, d]``: y_j = exp(Σ_i w_ji ln|e_i|), element-wise in d
    (AFN, section "Logarithmic Transformation Layer").

    Args:
        num_fields: F.
        num_neurons: N, the number of learned cross features ("logarithmic neurons").
        batch_norm: batch-normalise ln|e| (per field) before the weighted sum and
            the exponentiated output (per neuron) after it, as the authors' code
            does. The first keeps Σ w·ln|e| in a range where exp neither
            overflows nor vanishes (ln|e| of a 1e-4-scale embedding is ≈ −9);
            the second puts the products, which span orders of magnitude, on a
            scale the MLP can use.
        min_value: |e| is clamped to at least this before the log, so zero
            entries give a finite ln. Entries below it get no gradient, so it
            must sit far below the embedding scale: our tables start at std
            1e-4, and 1e-7 stalls ~0.08 % of entries at init, fewer than the
            authors' clamp of 1e-4 did to their Glorot-initialised table
            (~0.4 %); their 1e-4 would stall two thirds of ours.

    There is no bias inside the exp: a bias b_j only multiplies y_j by e^{b_j},
    which the batch norm after it divides out again (it would be a dead
    parameter).
    """

    def __init__(
        self,
        num_fields: int,
        num_neurons: int,
        *,
        batch_norm: bool = True,
        min_value: float = 1e-7,
    ) -> None:
        super().__init__()
        if num_neurons <= 0:
            raise ValueError(f"logarithmic_neurons must be positive, got {num_neurons}")
        if min_value <= 0:
            raise ValueError(f"min_value must be positive, got {min_value}")
        self.min_value = min_value
        self.num_neurons = num_neurons
        # Orders start small (std 0.1, the authors' choice): every neuron begins
        # close to a low-order, near-constant cross and learns its powers.
        self.weight = nn.Parameter(torch.empty(num_neurons, num_fields))
        nn.init.normal_(self.weight, std=0.1)
        self.log_norm = nn.BatchNorm1d(num_fields) if batch_norm else None
        self.exp_norm = nn.BatchNorm1d(num_neurons) if batch_norm else None

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        log_e = torch.log(emb.abs().clamp_min(self.min_value))  # [B, F, d]
        if self.log_norm is not None:
            log_e = self.log_norm(log_e)  # channel = field
        out = torch.exp(torch.matmul(self.weight, log_e))  # [N, F] @ [B, F, d] -> [B, N, d]
        if self.exp_norm is not None:
            out = self.exp_norm(out)  # channel = neuron
        return out


@register_encoder("afn")
class AFNEncoder(Encoder):
    """AFN as an encoder: logarithmic transformation layer → MLP on the flattened
    ``[B, N·d]`` cross features → logit (AFN's Fig. 2 model, without the
    DNN ensemble of AFN+).

    Defaults: ``logarithmic_neurons=600`` is the AFN authors' setting for
    Frappe (their released run script; 800 MovieLens, 1200 Avazu, 1500
    Criteo; FuxiCTR's default is 1200), and ``afn_hidden_units=(400, 400,
    400)`` is the paper's MLP. hidden = the MLP output.
    """

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        logarithmic_neurons: int = 600,
        afn_hidden_units: Sequence[int] = (400, 400, 400),
        ltl_batch_norm: bool = True,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.ltl = LogarithmicTransformation(
            ctx.num_fields, logarithmic_neurons, batch_norm=ltl_batch_norm
        )
        self.mlp = MLP(
            logarithmic_neurons * ctx.embedding_dim,
            afn_hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        self.output_dim = self.mlp.output_dim
        self.head = nn.Linear(self.output_dim, 1)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp(self.ltl(emb).flatten(1))
        return hidden, self.head(hidden).squeeze(-1)
