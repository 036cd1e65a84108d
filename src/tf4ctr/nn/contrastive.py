"""The self-supervised losses of CL4CTR (Wang et al., "CL4CTR: A Contrastive
Learning Framework for CTR Prediction", WSDM 2023).

CL4CTR regularises the feature embeddings, not the predictor: rare features
get few gradients from the click loss, so three extra signals shape every
embedding the batch touches.

- L_cl, the contrastive loss: two randomly masked views of a sample's
  embedding, each passed through a shared FI encoder and a projection, should
  land close together (squared L2 distance, no negatives, as in the paper).
- L_a, feature alignment: features of the same field should be close
  (squared L2 distance over every pair within a field).
- L_u, field uniformity: features of different fields should point apart
  (cosine similarity over every pair from different fields).

The paper defines L_a and L_u over the whole embedding table; here they run
over the features present in the batch, so their cost follows the batch size,
not the vocabulary (the authors' code also ships a batch-only variant, but one
that compares the same field across samples rather than different features of
a field; ours keeps the paper's definitions and only restricts the set).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf4ctr.nn.dropout import replace_torch_dropout
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.types import FeatureInput

MASK_TYPES = ("random", "feature", "dimension")


def mask_view(
    emb: torch.Tensor,
    ratio: float,
    mask_type: str = "random",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One augmented view of ``emb`` ``[B, F, d]``: a fraction ``ratio`` zeroed.

    ``random`` drops single entries, ``feature`` whole field embeddings (one
    draw per sample and field) and ``dimension`` whole embedding dimensions
    (one draw per sample and dimension, shared by all fields) — the paper's
    three augmentations. Kept entries are not rescaled: a view is a corrupted
    copy of the sample, not a dropout layer.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(
            f"unknown mask_type {mask_type!r} (expected one of: {', '.join(MASK_TYPES)})"
        )
    batch, fields, dim = emb.shape
    shape = {
        "random": (batch, fields, dim),
        "feature": (batch, fields, 1),
        "dimension": (batch, 1, dim),
    }[mask_type]
    keep = torch.rand(shape, generator=generator, device=emb.device) >= ratio
    return emb * keep.to(emb.dtype)


def contrastive_loss(view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
    """L_cl: mean over samples of ‖h¹ − h²‖², the squared distance between the
    two projected views (the paper's loss; no negative pairs)."""
    return (view1 - view2).pow(2).sum(dim=-1).mean()


def batch_features(
    embedding: FeatureEmbedding, x: FeatureInput
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct features a batch touches: their vectors ``[N, d]`` and
    field ids ``[N]``.

    Categorical features are table rows (each row appears once, however many
    samples use it); a row's field follows from the table's per-field offsets.
    A numeric field has one vector, counted as that field's single feature.
    """
    offsets = embedding.offsets
    rows = torch.unique(x.categorical + embedding.column_offsets)
    fields = torch.searchsorted(offsets, rows, right=True) - 1
    vectors = embedding.weight[rows]
    if embedding.num_numeric:
        numeric_fields = torch.arange(
            embedding.num_categorical, embedding.num_fields, device=fields.device
        )
        vectors = torch.cat([vectors, embedding.numeric_weight])
        fields = torch.cat([fields, numeric_fields])
    return vectors, fields


def feature_alignment_loss(
    vectors: torch.Tensor, fields: torch.Tensor, num_fields: int
) -> torch.Tensor:
    """L_a = Σ_f Σ_{i,j ∈ f} ‖e_i − e_j‖² / Σ_f n_f².

    The sum runs over ordered pairs (i = j adds zero) and the normaliser is the
    number of such pairs, as in the authors' full-table version. It is computed
    without forming pairs: Σ_{i,j∈f} ‖e_i − e_j‖² = 2·n_f·Σ_{i∈f} ‖e_i − μ_f‖²,
    centred on the field mean μ_f so that near-equal embeddings do not cancel
    catastrophically.
    """
    counts = torch.bincount(fields, minlength=num_fields).to(vectors.dtype)
    sums = vectors.new_zeros(num_fields, vectors.size(1)).index_add_(0, fields, vectors)
    means = sums / counts.clamp(min=1).unsqueeze(-1)
    spread = (vectors - means[fields]).pow(2).sum(dim=-1)
    per_field = vectors.new_zeros(num_fields).index_add_(0, fields, spread)
    return (2.0 * counts * per_field).sum() / counts.pow(2).sum()


def field_uniformity_loss(
    vectors: torch.Tensor, fields: torch.Tensor, num_fields: int, eps: float = 1e-8
) -> torch.Tensor:
    """L_u = Σ_{i,j: field(i) ≠ field(j)} cos(e_i, e_j) / #such pairs.

    Over unit vectors u, the sum over pairs from different fields is
    ‖Σ_i u_i‖² − Σ_f ‖Σ_{i∈f} u_i‖², which costs O(N·d) instead of O(N²·d).
    A true cosine is used: the authors' code divides by ‖e_i‖‖e_j‖ + 1e-4,
    which for embeddings initialised near 1e-4 makes the loss (and its
    gradient) vanish. Zero when the batch has a single field.
    """
    unit = F.normalize(vectors, dim=-1, eps=eps)
    counts = torch.bincount(fields, minlength=num_fields).to(vectors.dtype)
    field_sums = unit.new_zeros(num_fields, unit.size(1)).index_add_(0, fields, unit)
    cross = unit.sum(dim=0).pow(2).sum() - field_sums.pow(2).sum()
    pairs = counts.sum().pow(2) - counts.pow(2).sum()
    # With one field there are no pairs and ``cross`` is 0 up to rounding;
    # clamping (rather than branching on the count) avoids a device sync.
    return cross / pairs.clamp(min=1.0)


class ContrastiveModule(nn.Module):
    """Two masked views → shared FI encoder → per-view projection → L_cl.

    The FI encoder is a Transformer over the field axis (the paper's choice;
    its code stacks three layers with one head and a 128-wide feed-forward,
    here ``num_layers`` defaults to one to keep the extra cost small). As in
    the authors' code each view has its own linear projection from the
    flattened encoding down to ``d``, and the encoder is used only for this
    loss, never for the prediction.
    """

    def __init__(
        self,
        num_fields: int,
        embedding_dim: int,
        *,
        mask_type: str = "random",
        mask_ratio: float = 0.5,
        num_layers: int = 1,
        num_heads: int = 1,
        feedforward_dim: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if mask_type not in MASK_TYPES:
            raise ValueError(
                f"unknown mask_type {mask_type!r} (expected one of: {', '.join(MASK_TYPES)})"
            )
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.mask_type = mask_type
        self.mask_ratio = float(mask_ratio)
        self.encoder = replace_torch_dropout(
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(
                    embedding_dim,
                    num_heads,
                    dim_feedforward=feedforward_dim,
                    dropout=dropout,
                    batch_first=True,
                ),
                num_layers=num_layers,
                enable_nested_tensor=False,
            )
        )
        width = num_fields * embedding_dim
        self.project1 = nn.Linear(width, embedding_dim)
        self.project2 = nn.Linear(width, embedding_dim)

    def encode(self, view: torch.Tensor, projection: nn.Linear) -> torch.Tensor:
        return projection(self.encoder(view).flatten(1))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        view1 = mask_view(emb, self.mask_ratio, self.mask_type)
        view2 = mask_view(emb, self.mask_ratio, self.mask_type)
        return contrastive_loss(
            self.encode(view1, self.project1), self.encode(view2, self.project2)
        )
