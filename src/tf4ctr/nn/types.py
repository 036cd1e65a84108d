"""What a model reads and what it returns."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch


class FeatureInput(NamedTuple):
    """The model-facing part of a batch.

    ``categorical`` holds field-local indices (0 = padding, 1 = OOV, 2.. = vocab),
    shape ``[B, n_categorical]``; ``numeric`` holds raw values, ``[B, n_numeric]``.
    """

    categorical: torch.Tensor
    numeric: torch.Tensor


class ModelOutput(NamedTuple):
    """Every model returns this.

    ``logit`` is the fused logit (sigmoid gives the click probability).
    Models with two parallel encoders also return the simple and the complex
    encoder's logits ``z_s`` and ``z_c`` — all that TF Loss, the gradient
    probes and the difficulty analysis need. ``aux_loss`` is an extra
    training-only loss a model may add (e.g. a contrastive term).
    """

    logit: torch.Tensor
    z_s: torch.Tensor | None = None
    z_c: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


class SchemaLike(Protocol):
    """What a model needs to know about the data."""

    @property
    def vocab_sizes(self) -> list[int]: ...

    @property
    def numeric(self) -> tuple: ...


def table_layout(schema: SchemaLike) -> dict[str, Any]:
    """How input columns map to fields (sequence fields); plain schemas have one column per field.

    A schema may leave ``table_layout`` out (a hand-made schema of plain categorical fields).
    """
    layout = getattr(schema, "table_layout", None)
    if layout is None:
        n = len(schema.vocab_sizes)
        return {"widths": [1] * n, "pooling": ["sum"] * n}
    return dict(layout)
