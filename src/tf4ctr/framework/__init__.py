"""The paper's contribution: SSEM, differentiated encoders, TF Loss, DFM, Eq. 12."""

from tf4ctr.framework.encoders import (
    Encoder,
    EncoderContext,
    MLPEncoder,
    available_encoders,
    build_encoder,
    register_encoder,
)
from tf4ctr.framework.fusion import FUSION_TYPES, Fusion, build_fusion
from tf4ctr.framework.losses import (
    CTRLoss,
    TwinFocusLoss,
    binary_cross_entropy,
    check_twin_focus_params,
    focal_loss,
    log_p_true,
    reweighted_bce,
    twin_focus_loss,
    twin_focus_terms,
)
from tf4ctr.framework.objective import LossParts, Objective
from tf4ctr.framework.ssem import SSEM, SSEM_TYPES, build_ssem
from tf4ctr.framework.twin import TwinModel

__all__ = [
    "CTRLoss",
    "focal_loss",
    "reweighted_bce",
    "FUSION_TYPES",
    "SSEM",
    "SSEM_TYPES",
    "Encoder",
    "EncoderContext",
    "available_encoders",
    "build_encoder",
    "register_encoder",
    "Fusion",
    "LossParts",
    "MLPEncoder",
    "Objective",
    "TwinFocusLoss",
    "TwinModel",
    "binary_cross_entropy",
    "build_fusion",
    "build_ssem",
    "check_twin_focus_params",
    "log_p_true",
    "twin_focus_loss",
    "twin_focus_terms",
]
