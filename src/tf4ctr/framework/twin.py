"""The TF4CTR composition: SSEM → two encoders → DFM (paper Fig. 3, Algorithm 1)."""

from __future__ import annotations

from torch import nn

from tf4ctr.framework.encoders import Encoder
from tf4ctr.framework.fusion import Fusion
from tf4ctr.framework.ssem import SSEM
from tf4ctr.nn import FeatureInput, ModelOutput


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

    def forward(self, x: FeatureInput) -> ModelOutput:
        h_es, h_hs = self.ssem(x)
        h_s, z_s = self.simple_encoder(h_es, x)
        h_c, z_c = self.complex_encoder(h_hs, x)
        return ModelOutput(self.fusion(h_s, h_c, z_s, z_c), z_s, z_c)
