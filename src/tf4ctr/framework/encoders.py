"""Differentiated feature-interaction encoders (paper §III-D, Eq. 6).

The contract and the registry live in :mod:`tf4ctr.nn.encoder`, beside the
layers that implement the encoders; this module is the framework's view.
"""

# FinalMLP's stream and GDCN's gated cross network live in nn modules that tf4ctr.nn
# does not import; importing them here registers their encoders for any framework user.
import tf4ctr.nn.finalmlp  # noqa: F401
import tf4ctr.nn.gdcn  # noqa: F401
from tf4ctr.nn.encoder import (
    Encoder,
    EncoderContext,
    MLPEncoder,
    available_encoders,
    build_encoder,
    encoder_defaults,
    register_encoder,
)

__all__ = [
    "Encoder",
    "EncoderContext",
    "MLPEncoder",
    "available_encoders",
    "build_encoder",
    "encoder_defaults",
    "register_encoder",
]
