"""Euler interaction layers (Tian, Bai, Zhao, Wen and Cao, "EulerNet: Adaptive
Feature Interaction Learning via Euler's Formula for CTR Prediction", SIGIR 2023).

A high-order interaction Π_j e_j^{α_j} is expensive and sign-unsafe in real
space, but in complex polar form it is linear: by Euler's formula
Π_j (λ_j e^{iθ_j})^{α_j} = exp(Σ_j α_j ln λ_j) · e^{i Σ_j α_j θ_j}. EulerNet
therefore learns the orders α as plain weights applied to log-moduli and
phases, with no cap on the order and no enumeration of feature combinations.

The steps, in the paper's terms (its Fig. 1 and the "Euler Interaction
Layer" section; the symbols below are ours):

(a) complex mapping of each field: r_j = μ_j cos(e_j), p_j = μ_j sin(e_j),
    i.e. the embedding is the phase and μ_j a learnable per-field modulus;
(b) rectangular → polar: λ = √(r² + p²), θ = atan2(p, r);
(c) explicit interactions: ln ς_k = Σ_j α_{jk} ln λ_j + δ_k and
    ψ_k = Σ_j α_{jk} θ_j + δ'_k, element-wise over the embedding dimension;
(d) polar → rectangular: r̂_k = ς_k cos ψ_k, p̂_k = ς_k sin ψ_k;
(e) implicit interactions on the same complex input: r̃ = ReLU(W r + b) and
    p̃ = ReLU(W p + b), one W shared by the real and imaginary parts;
(f) the layer output is (r̂ + r̃) + i(p̂ + p̃), optionally layer-normalised;
(g) after the last layer, logit = wᵀ r_L + wᵀ p_L + b, one regression vector
    for both parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.dropout import FastDropout
from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.types import FeatureInput

# Keeps ln(r² + p²) finite when a complex feature is exactly zero.
_MODULUS_EPS = 1e-8


def initial_orders(num_inputs: int, num_orders: int) -> torch.Tensor:
    """Order matrix α ``[num_inputs, num_orders]`` where order k starts as field k mod F.

    The authors note that the start of α matters a lot for training: they
    use the identity when the layer is square and an almost one-hot random
    pick of one input per order otherwise. Both start every order as a plain
    first-order term that gradients then mix; a cyclic one-hot gives the
    identity in the square case and covers every input otherwise.
    """
    alpha = torch.zeros(num_inputs, num_orders)
    alpha[torch.arange(num_orders) % num_inputs, torch.arange(num_orders)] = 1.0
    return alpha


class EulerInteractionLayer(nn.Module):
    """Steps (b)–(f): complex ``(r, p)``, ``[B, num_inputs, d]`` each, to ``[B, num_orders, d]``.

    Args:
        num_inputs: complex vectors coming in (the number of fields for the first layer).
        num_orders: K, learned interaction terms going out.
        dim: d, the embedding width (orders act element-wise along it).
        dropout: dropout on the explicit path's log-moduli and phases and on the
            implicit path's input (the paper tunes the two separately; one rate
            keeps the config small).
        layer_norm: layer-normalise r and p of each output vector (the
            paper's optional normalisation).
    """

    def __init__(
        self,
        num_inputs: int,
        num_orders: int,
        dim: int,
        *,
        dropout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_orders <= 0:
            raise ValueError(f"every entry of order_list must be positive, got {num_orders}")
        self.num_orders = num_orders
        self.dim = dim
        self.orders = nn.Parameter(initial_orders(num_inputs, num_orders))  # α
        # δ and δ' of step (c): one per order and embedding coordinate, started
        # near zero so every order starts as (almost) its assigned input.
        self.log_modulus_bias = nn.Parameter(0.01 * torch.randn(num_orders, dim))
        self.phase_bias = nn.Parameter(0.01 * torch.randn(num_orders, dim))
        self.implicit = nn.Linear(num_inputs * dim, num_orders * dim)
        # Small weights: at start the implicit path must not drown the
        # explicit one, whose terms have modulus ≈ 1.
        nn.init.normal_(self.implicit.weight, std=0.01)
        nn.init.zeros_(self.implicit.bias)
        self.explicit_dropout = FastDropout(dropout)
        self.implicit_dropout = FastDropout(dropout)
        self.norm_real = nn.LayerNorm(dim) if layer_norm else None
        self.norm_imag = nn.LayerNorm(dim) if layer_norm else None

    def explicit(self, real: torch.Tensor, imag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps (b)–(d): the learned-order products, back in rectangular form."""
        log_modulus = 0.5 * torch.log(real.square() + imag.square() + _MODULUS_EPS)
        phase = torch.atan2(imag, real)
        log_modulus = self.explicit_dropout(log_modulus)
        phase = self.explicit_dropout(phase)
        # Σ_j α_jk x_j for every embedding coordinate: [B, F, d] × [F, K] -> [B, K, d]
        log_modulus = torch.einsum("bfd,fk->bkd", log_modulus, self.orders) + self.log_modulus_bias
        phase = torch.einsum("bfd,fk->bkd", phase, self.orders) + self.phase_bias
        modulus = torch.exp(log_modulus)
        return modulus * torch.cos(phase), modulus * torch.sin(phase)

    def implicit_part(self, x: torch.Tensor) -> torch.Tensor:
        """Step (e) for one of the two parts (the weights are shared)."""
        out = torch.relu(self.implicit(self.implicit_dropout(x.flatten(1))))
        return out.view(x.shape[0], self.num_orders, self.dim)

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ex_real, ex_imag = self.explicit(real, imag)
        out_real = ex_real + self.implicit_part(real)
        out_imag = ex_imag + self.implicit_part(imag)
        if self.norm_real is not None and self.norm_imag is not None:
            out_real, out_imag = self.norm_real(out_real), self.norm_imag(out_imag)
        return out_real, out_imag


@register_encoder("euler")
class EulerEncoder(Encoder):
    """EulerNet as an encoder: steps (a)–(g) above.

    Defaults follow the authors' released configurations, which all use one
    Euler layer with as many orders as there are fields (Avazu [23],
    MovieLens [7]; Criteo stacks two, [39, 39]) and no layer norm on small
    data: ``order_list=None`` means ``[num_fields]``. hidden = the flattened
    last layer, real part then imaginary part ``[B, 2·K·d]``.
    """

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        order_list: Sequence[int] | None = None,
        dropout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        orders = list(order_list) if order_list else [ctx.num_fields]
        # μ_j of step (a): one modulus per field, starting at 1 so that the
        # first layer sees unit complex numbers e^{i e_j}.
        self.modulus = nn.Parameter(torch.ones(ctx.num_fields, 1))
        layers = []
        width = ctx.num_fields
        for num_orders in orders:
            layers.append(
                EulerInteractionLayer(
                    width,
                    int(num_orders),
                    ctx.embedding_dim,
                    dropout=dropout,
                    layer_norm=layer_norm,
                )
            )
            width = int(num_orders)
        self.layers = nn.ModuleList(layers)
        self.output_dim = 2 * width * ctx.embedding_dim
        self.head = nn.Linear(width * ctx.embedding_dim, 1)
        nn.init.xavier_normal_(self.head.weight)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        real, imag = self.modulus * torch.cos(emb), self.modulus * torch.sin(emb)
        for layer in self.layers:
            real, imag = layer(real, imag)
        real, imag = real.flatten(1), imag.flatten(1)
        # wᵀr + wᵀp + b == wᵀ(r + p) + b: one shared regression vector, step (g).
        logit = self.head(real + imag).squeeze(-1)
        return torch.cat([real, imag], dim=1), logit
