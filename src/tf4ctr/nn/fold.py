"""An MLP's first layer folded into the embedding table it reads, for evaluation.

An MLP over ``embedding(x).flatten(1)`` starts with ``W·[e_1 ‖ … ‖ e_F] + b = b + Σ_f W_f·e_f``,
``W_f`` being the block of W's columns that field f's embedding meets. ``W_f·e`` depends on the
table row alone, so one product per table row, ``T[v] = W_{f(v)}·E[v]`` (``[V, d]`` → ``[V, H]``),
replaces one product per sample: the layer becomes a sum of F rows of T per sample (one
``embedding_bag``), and numeric fields, each a value times its vector, a product of the values
with their folded vectors. On Frappe_x1 (16 wide, H = 400) evaluation gets 9-17 % faster
(benchmarks/eval_fold.py: DualMLP 1.17×, TF4CTR 1.12×, DCNv2 1.09×; results/eval_fold.json).

The sum runs in a different order than the matrix product's, so a folded logit may differ from
the unfolded one in its last digits (~1e-7); ``train.fold_embeddings`` is therefore part of a
run's result key. Training never folds: the gradient must reach E and W separately.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.types import FeatureInput

#: Largest folded table (rows × first-layer width, in elements) worth building: 2^25 floats is
#: 128 MB. Past it the table stops fitting any cache and building it costs more than it saves
#: for a validation split (a Criteo-sized vocabulary folds to gigabytes); such MLPs don't fold.
MAX_FOLDED_ELEMENTS = 1 << 25


def can_fold(embedding: FeatureEmbedding, weight: torch.Tensor) -> bool:
    """Whether a first layer of this ``weight`` ([H, F·d]) reading ``embedding`` folds.

    A sequence field pools several rows into one field vector, which the table cannot see from
    a single row, and a table past :data:`MAX_FOLDED_ELEMENTS` costs more than it saves.
    """
    return (
        not embedding.has_sequences
        and embedding.num_categorical > 0
        and weight.dim() == 2
        and weight.size(1) == embedding.num_fields * embedding.dim
        and embedding.weight.size(0) * weight.size(0) <= MAX_FOLDED_ELEMENTS
    )


def fold_tables(
    embedding: FeatureEmbedding, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, T_num)``: every categorical row's ``W_f·E[v]`` ([V, H]) and every numeric field's
    ``W_f·n_f`` ([N, H]), f the field the row or vector belongs to."""
    dim = embedding.dim
    blocks = weight.unflatten(1, (embedding.num_fields, dim))  # [H, F, d]
    sizes = torch.diff(
        embedding.offsets, append=embedding.offsets.new_tensor([embedding.weight.size(0)])
    ).tolist()
    per_field = embedding.weight.split(sizes)
    table = torch.cat([rows @ blocks[:, f].t() for f, rows in enumerate(per_field)])
    first_numeric = embedding.num_categorical
    numeric = torch.einsum(
        "nd,hnd->nh", embedding.numeric_weight, blocks[:, first_numeric:]
    )  # [N, H]
    return table, numeric


def folded_first_layer(
    embedding: FeatureEmbedding,
    tables: tuple[torch.Tensor, torch.Tensor],
    bias: torch.Tensor | None,
    x: FeatureInput,
) -> torch.Tensor:
    """``W·embedding(x).flatten(1) + b`` from the folded tables: [B, H]."""
    table, numeric = tables
    index = x.categorical + embedding.column_offsets
    out = nn.functional.embedding_bag(index, table, mode="sum")
    if embedding.num_numeric:
        out = torch.addmm(out, x.numeric.to(out.dtype), numeric)
    if bias is None:
        return out
    return out + bias if out.requires_grad else out.add_(bias)  # the bag's output is ours


@contextlib.contextmanager
def layer_by_layer(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with folding off inside the block (restored after): what an exported graph
    traces. A folded graph would rebuild the whole table on every call, which a server scoring
    a few rows at a time pays in full."""
    switched = [m for m in model.modules() if getattr(m, "fold_embedding", False)]
    for module in switched:
        module.fold_embedding = False
    try:
        yield model
    finally:
        for module in switched:
            module.fold_embedding = True
