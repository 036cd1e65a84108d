"""The encoder contract and the encoder registry.

An encoder reads a field-structured embedding ``[B, F, d]`` (and, if it
needs them, the raw indices, e.g. for its own first-order weights) and
returns its final representation ĥ ``[B, output_dim]`` and its own logit z.
Any registered encoder can be the simple or the complex side of a twin model
(paper §III-D: "other more complex or simpler FI encoders could similarly be
employed"), which is how DeepFM, DCN, xDeepFM… and TF4CTR-DeepFM are composed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.mlp import MLP
from tf4ctr.nn.types import FeatureInput
from tf4ctr.registry import Registry


@dataclass(frozen=True)
class EncoderContext:
    """What every encoder may need to size itself."""

    num_fields: int
    embedding_dim: int
    vocab_sizes: tuple[int, ...] = ()
    num_numeric: int = 0
    #: input columns per categorical field (a sequence field's max_len), None = all 1
    widths: tuple[int, ...] | None = None
    #: per categorical field: "sum" or "mean" (how a sequence is pooled)
    pooling: tuple[str, ...] | None = None

    @property
    def table_layout(self) -> dict[str, Any]:
        """FeatureEmbedding keyword arguments for an encoder's own table (e.g. FM's first order)."""
        return {"widths": self.widths, "pooling": self.pooling}


class Encoder(nn.Module):
    """Base class: ``forward(emb, x) -> (hidden [B, output_dim], logit [B])``.

    An encoder that can read the table itself instead of its lookup (an MLP folding its first
    layer into the table at evaluation, tf4ctr.nn.fold) says so by :meth:`folds` and does it
    in :meth:`forward_folded`.
    """

    output_dim: int

    #: whether ``forward`` reads ``emb`` (the lookup of the table the model gives it)
    reads_embedding: bool = True

    def logit_only_parameters(self) -> list[nn.Parameter]:
        """The parameters that only the logit ``z`` reads, not the hidden output ``h``.

        A fusion of ``h_s`` and ``h_c`` (``cf``, ``moef``) never reaches them, so under a loss
        that does not read ``z_s`` / ``z_c`` they get no gradient. By default those of the
        ``head`` layer that turns ``h`` into ``z`` and of a ``first_order`` (LR) term added to
        ``z`` alone (FM, CIN), where the encoder has them.
        """
        parts = (getattr(self, "head", None), getattr(self, "first_order", None))
        return [p for part in parts if isinstance(part, nn.Module) for p in part.parameters()]

    def folds(self, table: FeatureEmbedding) -> bool:
        """Whether :meth:`forward_folded` should serve this forward, given the embedding
        ``table`` whose plain lookup is this encoder's input."""
        return False

    def forward_folded(
        self, table: FeatureEmbedding, x: FeatureInput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(table(x), x)`` computed from the table (only called when :meth:`folds`)."""
        raise NotImplementedError

    def forward(
        self, emb: torch.Tensor, x: FeatureInput
    ) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


ENCODERS: Registry[type[Encoder]] = Registry("encoder")


def register_encoder(name: str) -> Callable[[type[Encoder]], type[Encoder]]:
    """Class decorator: make an encoder available by name in configs."""
    return ENCODERS.register(name)


def available_encoders() -> list[str]:
    return sorted(ENCODERS)


def encoder_defaults(name: str) -> dict[str, Any]:
    cls = _encoder_class(name)
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, ctx
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _encoder_class(name: str) -> type[Encoder]:
    return ENCODERS[name]


def build_encoder(
    spec: str | dict[str, Any], ctx: EncoderContext, shared: dict[str, Any] | None = None
) -> Encoder:
    """Build an encoder from ``"fm"`` or ``{"name": "mlp", "hidden_units": [400, 400]}``.

    ``shared`` holds model-wide settings (activation, dropout, batch_norm) that
    an encoder takes only if its signature has them; keys in ``spec`` win.
    """
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    if "name" not in spec:
        raise ValueError(f"encoder spec needs a 'name' (one of: {', '.join(available_encoders())})")
    cls = _encoder_class(str(spec.pop("name")))
    accepted = encoder_defaults(cls_name(cls))
    unknown = [k for k in spec if k not in accepted]
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} for encoder {cls_name(cls)!r} "
            f"(expected one of: {', '.join(accepted)})"
        )
    kwargs = {k: v for k, v in (shared or {}).items() if k in accepted}
    kwargs.update(spec)
    return cls(ctx, **kwargs)


def cls_name(cls: type[Encoder]) -> str:
    return next(k for k, v in ENCODERS.items() if v is cls)


@register_encoder("mlp")
class MLPEncoder(Encoder):
    """MLP_s or MLP_c of Eq. 6: an MLP on the flattened embedding plus a logit head."""

    def __init__(
        self,
        ctx: EncoderContext,
        *,
        hidden_units: Sequence[int] = (400, 400, 400),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.mlp = MLP(
            ctx.num_fields * ctx.embedding_dim,
            hidden_units,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        self.output_dim = self.mlp.output_dim
        self.head = nn.Linear(self.output_dim, 1)

    def forward(self, emb: torch.Tensor, x: FeatureInput) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp(emb.flatten(1))
        return hidden, self.head(hidden).squeeze(-1)

    def folds(self, table: FeatureEmbedding) -> bool:
        return self.mlp.folds(table)

    def forward_folded(
        self, table: FeatureEmbedding, x: FeatureInput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp.forward_embedded(table, x)
        return hidden, self.head(hidden).squeeze(-1)
