"""The gated cross network of GDCN (Wang, Gu, Li, Lu, Zhang & Gu, "Towards Deeper,
Lighter and Interpretable Cross Network for CTR Prediction", CIKM 2023).

DCN-V2's cross layer with an information gate: every layer's cross term is
multiplied, element by element, by a sigmoid of the layer's input, so each
order of interaction keeps only what the gate lets through. The paper's point
is that this keeps deep cross networks (many layers) from degrading, where
DCN-V2's ungated crosses do. It acts on the flat embedding ``[B, F·d]``.
"""

from __future__ import annotations

import torch
from torch import nn

from tf4ctr.nn.cross import _CrossEncoder
from tf4ctr.nn.encoder import EncoderContext, register_encoder


class GatedCrossNetwork(nn.Module):
    """c_{l+1} = c_0 ⊙ (W_l c_l + b_l) ⊙ σ(W_g,l c_l) + c_l (GDCN, Eq. 1), ``[B, D] -> [B, D]``.

    W_l and W_g,l are full D × D matrices, Xavier-normal like every weight of the
    zoo; b_l starts uniform on [0, 1) as in the authors' code, and the gate has no
    bias, as in the paper's equation.
    """

    def __init__(self, input_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.cross = nn.ModuleList(nn.Linear(input_dim, input_dim) for _ in range(num_layers))
        self.gates = nn.ModuleList(
            nn.Linear(input_dim, input_dim, bias=False) for _ in range(num_layers)
        )
        for cross, gate in zip(self.cross, self.gates, strict=True):
            nn.init.xavier_normal_(cross.weight)
            nn.init.uniform_(cross.bias)
            nn.init.xavier_normal_(gate.weight)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for cross, gate in zip(self.cross, self.gates, strict=True):
            x = x0 * cross(x) * torch.sigmoid(gate(x)) + x
        return x


@register_encoder("gated_cross")
class GatedCrossEncoder(_CrossEncoder):
    """GDCN's gated cross network as an encoder; 3 layers by default, the authors' setting."""

    def __init__(self, ctx: EncoderContext, *, num_layers: int = 3) -> None:
        super().__init__()
        width = ctx.num_fields * ctx.embedding_dim
        self.net = GatedCrossNetwork(width, num_layers)
        self._make_head(width)
