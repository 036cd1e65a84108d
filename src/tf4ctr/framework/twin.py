"""The TF4CTR composition: SSEM → two encoders → DFM (paper Fig. 3, Algorithm 1)."""

from __future__ import annotations

import torch
from torch import nn

from tf4ctr.framework.encoders import Encoder
from tf4ctr.framework.fusion import Fusion
from tf4ctr.framework.ssem import SSEM
from tf4ctr.nn import FeatureEmbedding, FeatureInput, ModelOutput


class TwinModel(nn.Module):
    """Any simple/complex encoder pair wrapped in an SSEM and a DFM.

    Returns the fused logit and both encoders' logits (z_s, z_c), so the
    TF Loss (Eq. 7) applies without knowing which encoders are inside.
    """

    def __init__(
        self, ssem: SSEM, simple_encoder: Encoder, complex_encoder: Encoder, fusion: Fusion
    ) -> None:
        super().__init__()
        self.ssem = ssem
        self.simple_encoder = simple_encoder
        self.complex_encoder = complex_encoder
        self.fusion = fusion

    def logit_only_parameters(self) -> list[nn.Parameter]:
        """The parameters only z_s and z_c read (the TF loss, the analyses), not the fused
        logit: the encoders' logit heads when the fusion reads h_s and h_c alone."""
        if self.fusion.reads_logits:
            return []
        return self.simple_encoder.logit_only_parameters() + (
            self.complex_encoder.logit_only_parameters()
        )

    def penalty_only_parameters(self) -> list[nn.Parameter]:
        """The SSEM table of an encoder that does not read its lookup (``lr`` on raw ids
        beside SER's separate tables): only the embedding L2 penalty reads it."""
        tables = self.ssem.tables()
        if tables is None or tables[0] is tables[1]:
            return []
        encoders = (self.simple_encoder, self.complex_encoder)
        return [
            p
            for table, encoder in zip(tables, encoders, strict=True)
            if not encoder.reads_embedding
            for p in table.parameters()
        ]

    def forward(self, x: FeatureInput) -> ModelOutput:
        tables = None if self.training else self.ssem.tables()
        if tables is not None:
            folding = (self.simple_encoder.folds(tables[0]), self.complex_encoder.folds(tables[1]))
            if any(folding):
                return self._forward_folded(tables, folding, x)
        h_es, h_hs = self.ssem(x)
        h_s, z_s = self.simple_encoder(h_es, x)
        h_c, z_c = self.complex_encoder(h_hs, x)
        return ModelOutput(self.fusion(h_s, h_c, z_s, z_c), z_s, z_c)

    def _forward_folded(
        self,
        tables: tuple[FeatureEmbedding, FeatureEmbedding],
        folding: tuple[bool, bool],
        x: FeatureInput,
    ) -> ModelOutput:
        """Evaluation where an encoder reads its table directly (an MLP with its first layer
        folded into it, tf4ctr.nn.fold; ``folding``: which of the two does): only the lookups
        another encoder needs are made, each table's at most once, as ``ssem(x)`` would."""
        looked_up: dict[int, torch.Tensor] = {}

        def encode(
            encoder: Encoder, table: FeatureEmbedding, folds: bool
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if folds:
                return encoder.forward_folded(table, x)
            if id(table) not in looked_up:
                looked_up[id(table)] = table(x)
            return encoder(looked_up[id(table)], x)

        h_s, z_s = encode(self.simple_encoder, tables[0], folding[0])
        h_c, z_c = encode(self.complex_encoder, tables[1], folding[1])
        return ModelOutput(self.fusion(h_s, h_c, z_s, z_c), z_s, z_c)
