"""The interacting layer of AutoInt (Song et al., "AutoInt: Automatic Feature
Interaction Learning via Self-Attentive Neural Networks", CIKM 2019).

Each layer lets every field attend to every other field (multi-head
self-attention over the FIELD axis; the paper's "Interacting Layer"), so a
stack of L layers models interactions of up to L+1 fields, with attention
weights saying which pairs matter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.types import FeatureInput


class InteractingLayer(nn.Module):
    """One AutoInt interacting layer: ``[B, F, input_dim] -> [B, F, num_heads·attention_dim]``.

    Per head h: α_{m,k} = softmax_k(⟨W_Q e_m, W_K e_k⟩ · s)
    and ẽ_m = Σ_k α_{m,k} W_V e_k; the heads are concatenated and
    e_m^Res = ReLU(ẽ_m + W_Res e_m).

    Args:
        input_dim: width of each field's input vector.
        attention_dim: d', the width of one head.
        num_heads: H.
        use_residual: add the residual branch W_Res e_m. It is a bias-free
            projection W_Res when the widths differ and the identity when they
            match (the paper always uses W_Res; an identity skip is the usual
            ResNet choice and keeps the layers after the first cheaper).
        use_scale: s = 1/√d' (the authors' released code and every
            Transformer) instead of s = 1 (the paper's attention score as
            printed). Scaling keeps the softmax out of saturation once
            embeddings grow, so it is on by default.
        layer_norm: layer-normalise each field's output after the ReLU, as the
            authors' code does; off by default, as in the paper's equations.
    """

    def __init__(
        self,
        input_dim: int,
        attention_dim: int,
        num_heads: int,
        *,
        use_residual: bool = True,
        use_scale: bool = True,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if attention_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"attention_dim and num_heads must be positive, got {attention_dim} and {num_heads}"
            )
        self.attention_dim = attention_dim
        self.num_heads = num_heads
        self.output_dim = attention_dim * num_heads
        self.scale = 1.0 / math.sqrt(attention_dim) if use_scale else 1.0
        # Plain matrices, as in the paper; a key bias would cancel in the
        # softmax anyway (it adds the same term to every key of a query).
        self.query = nn.Linear(input_dim, self.output_dim, bias=False)
        self.key = nn.Linear(input_dim, self.output_dim, bias=False)
        self.value = nn.Linear(input_dim, self.output_dim, bias=False)
        self.use_residual = use_residual
        self.residual = (
            nn.Linear(input_dim, self.output_dim, bias=False)
            if use_residual and input_dim != self.output_dim
            else None
        )
        self.norm = nn.LayerNorm(self.output_dim) if layer_norm else None
        for module in (self.query, self.key, self.value, self.residual):
            if module is not None:
                nn.init.xavier_normal_(module.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F, H·d'] -> [B, H, F, d'], the layout attention kernels expect."""
        batch, fields, _ = x.shape
        return x.view(batch, fields, self.num_heads, self.attention_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        # The fused kernel is exactly softmax(q kᵀ · scale) v, without materialising
        # anything it does not need to.
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.output_dim)
        if self.use_residual:
            out = out + (self.residual(x) if self.residual is not None else x)
        out = torch.relu(out)
        if self.norm is not None:
            out = self.norm(out)
        return out


@register_encoder("attention")
class AttentionEncoder(Encoder):
    """AutoInt's interaction part as an encoder: stacked interacting layers, then a
    logit from the flattened outputs (the paper's "Output Layer").

    Defaults are the AutoInt paper's (§5.1 implementation details, and the
    authors' released scripts): 3 layers, 2 heads, d' = 32 per head. FuxiCTR's
    own defaults are smaller (2 layers, 1 head, d' = 8); pass those in a config
    to reproduce its runs.

    hidden = the flattened output ``[B, F·H·d']``.
    """

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        attention_layers: int = 3,
        num_heads: int = 2,
        attention_dim: int = 32,
        use_residual: bool = True,
        use_scale: bool = True,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if attention_layers <= 0:
            raise ValueError(f"attention_layers must be positive, got {attention_layers}")
        layers = []
        width = ctx.embedding_dim
        for _ in range(attention_layers):
            layer = InteractingLayer(
                width,
                attention_dim,
                num_heads,
                use_residual=use_residual,
                use_scale=use_scale,
                layer_norm=layer_norm,
            )
            layers.append(layer)
            width = layer.output_dim
        self.layers = nn.Sequential(*layers)
        self.output_dim = ctx.num_fields * width
        self.head = nn.Linear(self.output_dim, 1)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.layers(emb).flatten(1)
        return hidden, self.head(hidden).squeeze(-1)
