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

import collections
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


class _TouchedRows(torch.autograd.Function):
    """``weight[rows]`` for sorted distinct ``rows``, whose weight gradient is a sparse tensor
    of those rows, built already coalesced.

    Everything a step reads from a sparse table (each sample's lookup, the lazy L2 term) goes
    through this one ``[U, d]`` tensor, so autograd sums their gradients densely there and the
    table gets one sparse gradient with one entry per row: nothing left for ``coalesce`` (a
    sort of every entry) to do, in the gradient clip or the optimizer.
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.table_shape = weight.shape
        return weight.index_select(0, rows)

    #: the rows of the latest backwards (kept alive, so their memory is not reused)
    recent_rows: collections.deque[torch.Tensor] = collections.deque(maxlen=8)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        _TouchedRows.recent_rows.append(rows)
        sparse = torch.sparse_coo_tensor(
            rows.unsqueeze(0),
            grad.contiguous(),
            ctx.table_shape,
            is_coalesced=True,
            check_invariants=False,
        )
        return sparse, None


def _mark_coalesced(weight: torch.Tensor) -> None:
    """Give back the coalesced mark autograd drops when it stores a sparse gradient.

    ``AccumulateGrad`` rebuilds a sparse gradient it cannot take over from its indices and
    values, and the rebuilt tensor forgets it was coalesced; a coalesce would then sort its
    entries again (~3 ms a table at a Criteo batch). The mark is given back only when the
    stored gradient is exactly one :class:`_TouchedRows` gradient (its indices are that
    backward's distinct rows, the same memory and count); a sum of several stays unmarked.
    """
    grad = weight.grad
    if grad is None or not grad.is_sparse or grad.is_coalesced():
        return
    indices = grad._indices()
    if indices.size(0) != 1:
        return
    for rows in _TouchedRows.recent_rows:
        if indices.data_ptr() == rows.data_ptr() and indices.size(1) == rows.numel():
            weight.grad = torch.sparse_coo_tensor(
                indices, grad._values(), grad.shape, is_coalesced=True, check_invariants=False
            )
            return


class _UniqueMemo:
    """The last :func:`unique_rows` of a batch: SER's two tables share their offsets, so the
    second table's lookup reuses the first's distinct rows instead of finding them again."""

    def __init__(self) -> None:
        self.key: tuple[torch.Tensor, int, torch.Tensor] | None = None
        self.value: tuple[torch.Tensor, torch.Tensor] | None = None

    def get(
        self, categorical: torch.Tensor, offsets: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.key
        if (
            key is not None
            and key[0] is categorical
            and key[1] == categorical._version
            and key[2].shape == offsets.shape
            and bool(torch.equal(key[2], offsets))
        ):
            assert self.value is not None
            return self.value
        self.value = unique_rows(index)
        self.key = (categorical, categorical._version, offsets)
        return self.value


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
        #: the rows of the last training batch, ``[U, dim]`` (sparse mode), for squared_norm
        self._touched: torch.Tensor | None = None

    #: class-wide switch back to torch's own embedding backward (benchmarks' A/B)
    fast_backward = True
    #: shared by every table: the distinct rows of the batch last looked up
    _unique = _UniqueMemo()
    _marks_coalesced = False

    @property
    def num_fields(self) -> int:
        return self.num_categorical + self.num_numeric

    def forward(self, x: FeatureInput) -> torch.Tensor:
        index = x.categorical + self.column_offsets
        if self.sparse and self.training and torch.is_grad_enabled():
            # Look each distinct row up once: the sparse gradient then has one entry per row,
            # and the same rows serve the lazy L2 penalty (squared_norm)
            rows, inverse = self._unique.get(x.categorical, self.column_offsets, index)
            if not self._marks_coalesced:
                self.weight.register_post_accumulate_grad_hook(_mark_coalesced)
                self._marks_coalesced = True
            touched = _TouchedRows.apply(self.weight, rows)
            self._touched = touched
            emb = lookup(inverse, touched)
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

    def __getstate__(self) -> dict[str, Any]:
        # the last step's rows are part of its autograd graph, which cannot be copied
        return {**super().__getstate__(), "_touched": None}

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
            touched, self._touched = self._touched, None  # read once: frees the step's rows
            return touched.pow(2).sum() + numeric
        return self.weight.pow(2).sum() + numeric
