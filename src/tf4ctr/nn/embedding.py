"""One embedding table for all fields.

Every categorical field owns a contiguous block of rows in a single table, so a
batch costs one ``embedding`` call instead of a Python loop over fields (the
fast path that DESIGN.md asks for). Numeric fields kept as numbers get one
vector each, scaled by the value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tf4ctr.nn.types import FeatureInput


class FeatureEmbedding(nn.Module):
    """Embeds a batch into ``[B, num_fields, dim]`` (categorical fields first).

    Args:
        vocab_sizes: rows per categorical field (padding and OOV included).
        num_numeric: how many numeric fields are kept as numbers.
        dim: embedding width.
        init_std: std of the normal initialisation; FuxiCTR's 1e-4 by default,
            which is what the paper's runs used.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        *,
        init_std: float = 1e-4,
    ) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"embedding dim must be positive, got {dim}")
        self.dim = dim
        self.num_categorical = len(vocab_sizes)
        self.num_numeric = num_numeric
        offsets = torch.zeros(len(vocab_sizes), dtype=torch.long)
        if vocab_sizes:
            offsets[1:] = torch.cumsum(torch.tensor(list(vocab_sizes), dtype=torch.long), 0)[:-1]
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(int(sum(vocab_sizes)), dim))
        self.numeric_weight = nn.Parameter(torch.empty(num_numeric, dim))
        nn.init.normal_(self.weight, std=init_std)
        nn.init.normal_(self.numeric_weight, std=init_std)

    @property
    def num_fields(self) -> int:
        return self.num_categorical + self.num_numeric

    def forward(self, x: FeatureInput) -> torch.Tensor:
        emb = nn.functional.embedding(x.categorical + self.offsets, self.weight)
        if self.num_numeric == 0:
            return emb
        num = x.numeric.unsqueeze(-1) * self.numeric_weight
        return torch.cat([emb, num], dim=1)

    def squared_norm(self) -> torch.Tensor:
        """‖W‖² over the whole table: the paper's code penalises every row, every step."""
        return self.weight.pow(2).sum() + self.numeric_weight.pow(2).sum()
