"""Sample Selection Embedding Module (paper §III-C, Eq. 3–5).

An SSEM turns a batch into two field-structured embeddings, one for the simple
encoder (h_es) and one for the complex encoder (h_hs), each ``[B, F, d]``.
Keeping the field axis lets field-aware encoders (FM, CIN, attention) sit on
either side, not only MLPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tf4ctr.nn import MLP, FeatureEmbedding, FeatureInput
from tf4ctr.registry import Registry


class SSEM(nn.Module):
    """Base class: ``forward(x) -> (h_es, h_hs)``."""

    #: embedding widths seen by the simple and the complex encoder
    simple_dim: int
    complex_dim: int
    num_fields: int

    def forward(self, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def tables(self) -> tuple[FeatureEmbedding, FeatureEmbedding] | None:
        """The tables whose plain lookups *are* (h_es, h_hs), when the module does nothing
        else (share, ser): an encoder may then read its table directly at evaluation
        (:meth:`Encoder.folds`). None when the module transforms the lookups (gm, mmoe)."""
        return None


class SharedEmbedding(SSEM):
    """``share``: no selection, both encoders read the same embedding (DualMLP, DeepFM…)."""

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        *,
        table_layout: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(vocab_sizes, num_numeric, dim, **(table_layout or {}))
        self.simple_dim = self.complex_dim = dim
        self.num_fields = self.embedding.num_fields

    def forward(self, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding(x)
        return h, h

    def tables(self) -> tuple[FeatureEmbedding, FeatureEmbedding]:
        return self.embedding, self.embedding


class SeparateEmbedding(SSEM):
    """``ser``: two independent tables, Eq. 3.

    The paper's code gives the simple side half the width of the complex side;
    that is the default here, but any width works because the encoders are
    sized from the real widths (the code hard-coded half the total).
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        simple_dim: int | None = None,
        *,
        table_layout: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        simple_dim = simple_dim if simple_dim is not None else max(1, dim // 2)
        layout = table_layout or {}
        self.simple_embedding = FeatureEmbedding(vocab_sizes, num_numeric, simple_dim, **layout)
        self.complex_embedding = FeatureEmbedding(vocab_sizes, num_numeric, dim, **layout)
        self.simple_dim, self.complex_dim = simple_dim, dim
        self.num_fields = self.complex_embedding.num_fields

    def forward(self, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        return self.simple_embedding(x), self.complex_embedding(x)

    def tables(self) -> tuple[FeatureEmbedding, FeatureEmbedding]:
        return self.simple_embedding, self.complex_embedding


class GatedEmbedding(SSEM):
    """``gm``: one scalar gate per sample splits a shared embedding, Eq. 4.

    g = σ(MLP(h)); h_es = g·h, h_hs = (1 − g)·h. The gate MLP has one hidden
    layer of width D/4, as in the paper's code.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        *,
        activation: str = "relu",
        table_layout: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(vocab_sizes, num_numeric, dim, **(table_layout or {}))
        self.num_fields = self.embedding.num_fields
        width = self.num_fields * dim
        self.gate = MLP(width, [max(1, width // 4)], activation=activation, output_dim=1)
        self.simple_dim = self.complex_dim = dim

    def forward(self, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding(x)
        g = torch.sigmoid(self.gate(h.flatten(1))).unsqueeze(-1)  # [B, 1, 1]
        return g * h, (1.0 - g) * h


class MMoEEmbedding(SSEM):
    """``mmoe``: two experts, two softmax gates, Eq. 5.

    Experts are MLPs [D/2, D] and gates MLPs [D/4] → 2, following the paper's
    code; each expert's output is reshaped back to ``[B, F, d]``.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        *,
        num_experts: int = 2,
        activation: str = "relu",
        table_layout: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(vocab_sizes, num_numeric, dim, **(table_layout or {}))
        self.num_fields = self.embedding.num_fields
        width = self.num_fields * dim
        self.experts = nn.ModuleList(
            MLP(width, [max(1, width // 2), width], activation=activation)
            for _ in range(num_experts)
        )
        self.gates = nn.ModuleList(
            MLP(width, [max(1, width // 4)], activation=activation, output_dim=num_experts)
            for _ in range(2)
        )
        self.simple_dim = self.complex_dim = dim

    def forward(self, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding(x)
        flat = h.flatten(1)
        experts = torch.stack([e(flat) for e in self.experts], dim=1)  # [B, E, D]
        outs = []
        for gate in self.gates:
            weights = torch.softmax(gate(flat), dim=-1).unsqueeze(-1)  # [B, E, 1]
            outs.append((weights * experts).sum(dim=1).view_as(h))
        return outs[0], outs[1]


SSEM_TYPES: Registry[type[SSEM]] = Registry("ssem")
SSEM_TYPES.add("share", SharedEmbedding, "shared")
SSEM_TYPES.add("ser", SeparateEmbedding)
SSEM_TYPES.add("gm", GatedEmbedding)
SSEM_TYPES.add("mmoe", MMoEEmbedding, "moe")  # the paper's tables call MMoE "MoE"


def build_ssem(
    name: str,
    vocab_sizes: Sequence[int],
    num_numeric: int,
    dim: int,
    *,
    simple_dim: int | None = None,
    activation: str = "relu",
    table_layout: Mapping[str, Any] | None = None,
) -> SSEM:
    """Build an SSEM by name: ``share``, ``ser``, ``gm`` or ``mmoe``.

    ``table_layout`` (``FeatureSchema.table_layout``) describes sequence fields.
    """
    key = SSEM_TYPES.canonical(name)
    if key == "ser":
        return SeparateEmbedding(
            vocab_sizes, num_numeric, dim, simple_dim=simple_dim, table_layout=table_layout
        )
    if key == "share":
        return SharedEmbedding(vocab_sizes, num_numeric, dim, table_layout=table_layout)
    return SSEM_TYPES[key](
        vocab_sizes, num_numeric, dim, activation=activation, table_layout=table_layout
    )
