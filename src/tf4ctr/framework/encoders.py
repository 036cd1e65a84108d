"""Differentiated feature-interaction encoders (paper §III-D, Eq. 6).

The contract and the registry live in :mod:`tf4ctr.nn.encoder`, beside the
layers that implement the encoders; this module is the framework's view.
"""

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
