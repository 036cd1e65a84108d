"""Cross networks: explicit, bounded-degree feature crosses.

* :class:`CrossNet` — Wang, Fu, Fu & Wang, "Deep & Cross Network for Ad Click
  Predictions", ADKDD 2017: each layer multiplies by x0 once more, so L layers
  give every polynomial cross up to degree L + 1 at a cost linear in the input
  width (one weight vector per layer).
* :class:`CrossNetV2` — Wang et al., "DCN V2: Improved Deep & Cross Network and
  Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021: the
  weight vector becomes a full matrix, because a rank-one cross was shown to
  be too weak to model feature crosses on production data.
* :class:`CrossNetMix` — DCN-V2 §3.2: the full matrix is replaced by a mixture
  of low-rank experts with a nonlinearity in the low-rank space, to cut the
  O(D²) cost while keeping (in the paper's experiments) the accuracy.

All three act on the flattened field embedding ``[B, F·d]``.
"""

from __future__ import annotations

import torch
from torch import nn

from tf4ctr.nn.encoder import Encoder, EncoderContext, register_encoder
from tf4ctr.nn.types import FeatureInput


def _xavier_normal_std(fan_in: int, fan_out: int) -> float:
    return (2.0 / (fan_in + fan_out)) ** 0.5


def cross_step(x0: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One DCN cross layer x0 · (xᵀ w) + b + x, with w and b vectors of width D."""
    return x0 * (x @ w).unsqueeze(-1) + b + x


class CrossNet(nn.Module):
    """x_{l+1} = x0 · (x_lᵀ w_l) + b_l + x_l (DCN, Eq. 3), ``[B, D] -> [B, D]``."""

    def __init__(self, input_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        # w_l maps D → 1, so it gets the Xavier-normal scale of such a map,
        # matching the initialisation of every other Linear in the zoo.
        self.weight = nn.Parameter(
            torch.randn(num_layers, input_dim) * _xavier_normal_std(input_dim, 1)
        )
        self.bias = nn.Parameter(torch.zeros(num_layers, input_dim))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.weight, self.bias, strict=True):
            x = cross_step(x0, x, w, b)
        return x


class CrossNetV2(nn.Module):
    """x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l (DCN-V2, Eq. 1), full-rank W_l."""

    def __init__(self, input_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(nn.Linear(input_dim, input_dim) for _ in range(num_layers))
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class CrossNetMix(nn.Module):
    """The mixture of low-rank cross experts of DCN-V2 §3.2 (Eq. 4).

    x_{l+1} = Σ_i G_i(x_l) · x0 ⊙ (U_i g(C_i g(V_iᵀ x_l)) + b_l) + x_l, with
    U_i, V_i ∈ R^{D×r}, C_i ∈ R^{r×r}, g = tanh and G = softmax over linear
    gate scores (the paper leaves g and G open; tanh keeps the low-rank
    projection bounded, softmax keeps the mixture a convex combination so the
    layer's scale does not grow with the number of experts). The bias b_l is
    shared by the experts of a layer, as in the paper's equation. The experts
    of a layer are evaluated together with batched einsums, not a Python loop.
    """

    def __init__(self, input_dim: int, num_layers: int, low_rank: int, num_experts: int) -> None:
        super().__init__()
        for name, value in (
            ("num_layers", num_layers),
            ("low_rank", low_rank),
            ("num_experts", num_experts),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        shape = (num_layers, num_experts)
        self.u = nn.Parameter(torch.empty(*shape, input_dim, low_rank))
        self.v = nn.Parameter(torch.empty(*shape, input_dim, low_rank))
        self.c = nn.Parameter(torch.empty(*shape, low_rank, low_rank))
        self.bias = nn.Parameter(torch.zeros(num_layers, input_dim))
        self.gates = nn.ModuleList(nn.Linear(input_dim, num_experts) for _ in range(num_layers))
        # Xavier-normal per expert matrix (torch's fan computation for a 4-D
        # tensor would treat the layer/expert axes as a receptive field).
        with torch.no_grad():
            self.u.normal_(std=_xavier_normal_std(low_rank, input_dim))
            self.v.normal_(std=_xavier_normal_std(input_dim, low_rank))
            self.c.normal_(std=_xavier_normal_std(low_rank, low_rank))
        for gate in self.gates:
            nn.init.xavier_normal_(gate.weight)
            nn.init.zeros_(gate.bias)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for l, gate in enumerate(self.gates):  # noqa: E741  (l is the paper's layer index)
            low = torch.tanh(torch.einsum("bd,edr->ber", x, self.v[l]))  # V_iᵀ x
            low = torch.tanh(torch.einsum("ber,esr->bes", low, self.c[l]))  # C_i (·)
            up = torch.einsum("bes,eds->bed", low, self.u[l])  # U_i (·)
            experts = x0.unsqueeze(1) * (up + self.bias[l])  # [B, E, D]
            weights = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # [B, E, 1]
            x = (weights * experts).sum(dim=1) + x
        return x


class _CrossEncoder(Encoder):
    """Shared head: hidden = the last cross layer's output, logit = Linear(hidden)."""

    net: nn.Module

    def _make_head(self, width: int) -> None:
        self.output_dim = width
        self.head = nn.Linear(width, 1)
        nn.init.xavier_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.net(emb.flatten(1))
        return hidden, self.head(hidden).squeeze(-1)


@register_encoder("crossnet")
class CrossNetEncoder(_CrossEncoder):
    """DCN's cross network (Wang et al., ADKDD 2017); 3 layers by default, a
    common setting in FuxiCTR/BARS benchmarks for Frappe-sized data."""

    def __init__(self, ctx: EncoderContext, *, num_layers: int = 3) -> None:
        super().__init__()
        width = ctx.num_fields * ctx.embedding_dim
        self.net = CrossNet(width, num_layers)
        self._make_head(width)


@register_encoder("crossnetv2")
class CrossNetV2Encoder(_CrossEncoder):
    """DCN-V2's full-rank cross network (Wang et al., WWW 2021); 3 layers by default."""

    def __init__(self, ctx: EncoderContext, *, num_layers: int = 3) -> None:
        super().__init__()
        width = ctx.num_fields * ctx.embedding_dim
        self.net = CrossNetV2(width, num_layers)
        self._make_head(width)


@register_encoder("crossnetmix")
class CrossNetMixEncoder(_CrossEncoder):
    """DCN-V2's low-rank mixture cross network (Wang et al., WWW 2021, §3.2).

    Defaults: 3 layers, rank 32 and 4 experts, the usual defaults of open
    DCN-V2 implementations (FuxiCTR's among them); with the zoo's 16-wide
    embeddings and Frappe's 10 fields, D = 160, so rank 32 is D/5.
    """

    def __init__(
        self, ctx: EncoderContext, *, num_layers: int = 3, low_rank: int = 32, num_experts: int = 4
    ) -> None:
        super().__init__()
        width = ctx.num_fields * ctx.embedding_dim
        self.net = CrossNetMix(width, num_layers, low_rank, num_experts)
        self._make_head(width)
