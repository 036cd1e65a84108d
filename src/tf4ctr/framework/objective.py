"""The training objective of Eq. 12: L_total = L_ctr + L_TF (+ embedding L2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tf4ctr.framework.losses import CTRLoss, TwinFocusLoss
from tf4ctr.nn import FeatureEmbedding, ModelOutput


@dataclass
class LossParts:
    """The total and its pieces, for logging (pieces are detached floats later)."""

    total: torch.Tensor
    ctr: torch.Tensor
    twin_focus: torch.Tensor | None = None
    l2: torch.Tensor | None = None
    aux: torch.Tensor | None = None


class Objective(nn.Module):
    """Combines the CTR loss on the fused logit with the optional extras.

    Args:
        ctr_loss: the loss on the fused logit; log loss by default.
        twin_focus: TF Loss on (z_s, z_c); None trains with L_ctr alone.
        embedding_l2: λ of the (λ/2)·‖E‖² penalty that the paper's code adds
            over every embedding table (both tables under SER), every step.
    """

    def __init__(
        self,
        twin_focus: TwinFocusLoss | None = None,
        embedding_l2: float = 0.0,
        *,
        ctr_loss: CTRLoss | None = None,
    ) -> None:
        super().__init__()
        self.ctr_loss = ctr_loss if ctr_loss is not None else CTRLoss("bce")
        if embedding_l2 < 0:
            raise ValueError(f"embedding_l2 must be >= 0, got {embedding_l2}")
        self.twin_focus = twin_focus
        self.embedding_l2 = float(embedding_l2)

    def freeze_unreached(self, model: nn.Module) -> None:
        """Make the parameters no term of this objective can reach not require a gradient.

        They are those only z_s / z_c read (a model's ``logit_only_parameters``, e.g. the
        encoders' heads under a ``cf`` fusion) when no Twin Focus term reads z_s / z_c, and
        those only the embedding penalty reads (``penalty_only_parameters``, a table no
        encoder looks up) when it is off. They got no gradient before either, so one
        process trains as it did; DDP, which refuses a parameter that gets none, leaves one
        that requires none alone. Under an objective that reads them they require
        gradients again.
        """
        for method, reached in (
            ("logit_only_parameters", self.twin_focus is not None),
            ("penalty_only_parameters", self.embedding_l2 > 0),
        ):
            listed = getattr(model, method, None)
            for p in listed() if callable(listed) else []:
                p.requires_grad_(reached)

    def forward(self, model: nn.Module, out: ModelOutput, label: torch.Tensor) -> LossParts:
        ctr = self.ctr_loss(out.logit, label)
        total = ctr
        parts = LossParts(total=total, ctr=ctr)
        if self.twin_focus is not None:
            if out.z_s is None or out.z_c is None:
                raise ValueError(
                    f"TF Loss needs a model with two encoder logits (z_s, z_c); "
                    f"{type(model).__name__} returned none"
                )
            parts.twin_focus = self.twin_focus(out.z_s, out.z_c, label)
            total = total + parts.twin_focus
        if self.embedding_l2 > 0:
            norms = [m.squared_norm() for m in model.modules() if isinstance(m, FeatureEmbedding)]
            if norms:
                parts.l2 = 0.5 * self.embedding_l2 * torch.stack(norms).sum()
                total = total + parts.l2
        if out.aux_loss is not None:
            parts.aux = out.aux_loss
            total = total + out.aux_loss
        parts.total = total
        return parts
