"""One embedding table for all fields.

Every categorical field owns a contiguous block of rows in a single table, so a
batch costs one ``embedding`` call instead of a Python loop over fields (the
fast path that DESIGN.md asks for). Numeric fields kept as numbers get one
vector each, scaled by the value.

With ``sparse = True`` the table's gradient is a sparse tensor holding only
the rows a batch touched, so an optimizer step costs what the batch touches
instead of the whole table (the remedy for Criteo-sized vocabularies).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from tf4ctr.nn.types import FeatureInput


def unique_rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(index, return_inverse=True)``, faster on CPU.

    torch sorts all B × F indices (~90 ms for a Criteo batch of 4096 on two
    cores, a tenth of a sparse training step); Arrow's hash-based dictionary
    encoding finds the distinct rows in ~4 ms, and only those few are then
    sorted, so the result is the same: sorted rows and each index's position.
    """
    if index.device.type != "cpu":
        return torch.unique(index, return_inverse=True)
    encoded = pa.array(index.reshape(-1).numpy()).dictionary_encode()
    distinct = torch.from_numpy(encoded.dictionary.to_numpy(zero_copy_only=False).copy())
    first_seen = torch.from_numpy(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
    rows, order = torch.sort(distinct)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return rows, rank[first_seen].view(index.shape)


class _LookupAddBackward(torch.autograd.Function):
    """``F.embedding(index, weight)`` whose weight gradient is summed by ``index_add_``.

    torch's CPU ``embedding_dense_backward`` and ``index_add_`` both add each looked-up row's
    gradient into its table row in index order, so the gradients are the same bit for bit
    (tests/test_framework.py), and ``index_add_`` is faster at CTR shapes: 100,000 indices into
    5,383 rows at two threads, 3.32 → 0.56 ms 16 wide, 3.27 → 0.79 ms 8 wide, 4.16 → 0.17 ms
    1 wide (an FM's first-order weights); on Frappe_x1 a DeepFM epoch 7 % faster, DualMLP 3 %,
    the others within the spread (benchmarks/embedding_backward.py, its results JSON).
    """

    @staticmethod
    def forward(ctx: Any, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = weight.size(0)
        return nn.functional.embedding(index, weight)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (index,) = ctx.saved_tensors
        width = grad.size(-1)
        table = grad.new_zeros(ctx.rows, width)
        return None, table.index_add_(0, index.reshape(-1), grad.reshape(-1, width))


def lookup(index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight[index]`` as ``F.embedding`` computes it, with a faster CPU backward.

    The hand-written backward serves dense CPU training only; anything else (no gradient,
    an accelerator, ``FeatureEmbedding.fast_backward = False``) is ``F.embedding`` itself.
    """
    if (
        FeatureEmbedding.fast_backward
        and weight.requires_grad
        and torch.is_grad_enabled()
        and weight.device.type == "cpu"
    ):
        return _LookupAddBackward.apply(index, weight)
    return nn.functional.embedding(index, weight)


class FeatureEmbedding(nn.Module):
    """Embeds a batch into ``[B, num_fields, dim]`` (categorical fields first).

    Args:
        vocab_sizes: rows per categorical field (padding and OOV included).
        num_numeric: how many numeric fields are kept as numbers.
        dim: embedding width.
        init_std: std of the normal initialisation; FuxiCTR's 1e-4 by default,
            which is what the paper's runs used.
        widths: input columns per categorical field; a sequence field takes
            ``max_len`` columns (token indices, 0 = padding) and its token
            vectors are pooled into one field vector, padding masked out.
        pooling: per field, ``"sum"`` (default) or ``"mean"`` for sequences.
    """

    def __init__(
        self,
        vocab_sizes: Sequence[int],
        num_numeric: int,
        dim: int,
        *,
        init_std: float = 1e-4,
        widths: Sequence[int] | None = None,
        pooling: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"embedding dim must be positive, got {dim}")
        widths = list(widths) if widths is not None else [1] * len(vocab_sizes)
        if len(widths) != len(vocab_sizes) or any(w < 1 for w in widths):
            raise ValueError(f"widths {widths} do not fit {len(vocab_sizes)} fields")
        self.dim = dim
        self.num_categorical = len(vocab_sizes)
        self.num_numeric = num_numeric
        # built from Python ints, so a model can be built on the meta device (shapes only)
        # to count its parameters before allocating them (tf4ctr.run.capacity)
        starts = [0, *itertools.accumulate(vocab_sizes)][: len(vocab_sizes)]
        self.register_buffer("offsets", torch.tensor(starts, dtype=torch.long), persistent=False)
        #: first table row of each input column's field
        self.register_buffer(
            "column_offsets",
            torch.tensor(
                [s for s, w in zip(starts, widths, strict=True) for _ in range(w)], dtype=torch.long
            ),
            persistent=False,
        )
        self.has_sequences = any(w > 1 for w in widths)
        self.register_buffer(
            "column_field",
            torch.tensor([f for f, w in enumerate(widths) for _ in range(w)], dtype=torch.long),
            persistent=False,
        )
        means = [p == "mean" for p in (pooling or ["sum"] * len(widths))]
        self.register_buffer("mean_pooled", torch.tensor(means, dtype=torch.bool), persistent=False)
        self.has_mean_pooling = any(means)
        self.weight = nn.Parameter(torch.empty(int(sum(vocab_sizes)), dim))
        nn.init.normal_(self.weight, std=init_std)
        if num_numeric:
            self.numeric_weight = nn.Parameter(torch.empty(num_numeric, dim))
            nn.init.normal_(self.numeric_weight, std=init_std)
        else:
            # No numeric field, so no numeric table to learn: an empty tensor, not a
            # parameter. As a parameter it would be one no loss ever reaches (DDP refuses
            # those); the readers of ``numeric_weight`` (fold, CL4CTR) still get [0, dim].
            self.register_buffer("numeric_weight", torch.empty(0, dim), persistent=False)
        #: sparse gradients for ``weight`` (set by the trainer's sparse option)
        self.sparse = False
        self._touched: torch.Tensor | None = None

    #: class-wide switch back to torch's own embedding backward (benchmarks' A/B)
    fast_backward = True

    @property
    def num_fields(self) -> int:
        return self.num_categorical + self.num_numeric

    def forward(self, x: FeatureInput) -> torch.Tensor:
        index = x.categorical + self.column_offsets
        if self.sparse and self.training:
            # Look each distinct row up once: the sparse gradient then has one
            # entry per row (no duplicates to sort out when it is coalesced),
            # and the same rows serve the lazy L2 penalty.
            rows, inverse = unique_rows(index)
            self._touched = rows
            emb = nn.functional.embedding(rows, self.weight, sparse=True)[inverse]
        else:
            emb = (
                nn.functional.embedding(index, self.weight, sparse=True)
                if self.sparse
                else lookup(index, self.weight)
            )
        if self.has_sequences:
            emb = self._pool(emb, x.categorical)
        if self.num_numeric == 0:
            return emb
        num = x.numeric.unsqueeze(-1) * self.numeric_weight
        return torch.cat([emb, num], dim=1)

    def _pool(self, emb: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """[B, columns, d] → [B, fields, d]: masked sum (or mean) of each field's columns."""
        present = (local != 0).to(emb.dtype)  # index 0 is padding, only sequences have it
        emb = emb * present.unsqueeze(-1)
        shape = (emb.size(0), self.num_categorical, emb.size(2))
        pooled = emb.new_zeros(shape).index_add_(1, self.column_field, emb)
        if self.has_mean_pooling:
            counts = present.new_zeros(shape[:2]).index_add_(1, self.column_field, present)
            scale = torch.where(self.mean_pooled, 1.0 / counts.clamp(min=1.0), 1.0)
            pooled = pooled * scale.unsqueeze(-1)
        return pooled

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Runs written before the empty numeric table stopped being a parameter stored it
        # ([0, dim]): there is nothing in it to load, so its key is dropped, not refused.
        key = prefix + "numeric_weight"
        if self.num_numeric == 0 and key in state_dict and state_dict[key].numel() == 0:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def squared_norm(self) -> torch.Tensor:
        """‖W‖² over the whole table: the paper's code penalises every row, every step.

        In sparse mode only the rows of the last training batch are penalised
        (the usual lazy regularisation), since a whole-table penalty would make
        the gradient dense again.
        """
        numeric = self.numeric_weight.pow(2).sum()
        if self.sparse and self._touched is not None:
            return (
                nn.functional.embedding(self._touched, self.weight, sparse=True).pow(2).sum()
                + numeric
            )
        return self.weight.pow(2).sum() + numeric
