"""Layers shared by every model: embeddings, MLP blocks, interaction layers, encoders.

Importing this package registers every encoder (each lives beside its layer).
"""

from tf4ctr.nn import (  # noqa: F401  (encoder registration side effects)
    afn,
    attention,
    cin,
    contrastive,
    cross,
    edcn,
    euler,
    fm,
    linear,
)
from tf4ctr.nn.building import LayerOptions, building_with, current_layer_options
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.encoder import Encoder, EncoderContext, MLPEncoder, build_encoder, register_encoder
from tf4ctr.nn.mlp import MLP, activation_layer
from tf4ctr.nn.types import FeatureInput, ModelOutput

__all__ = [
    "MLP",
    "Encoder",
    "EncoderContext",
    "FeatureEmbedding",
    "FeatureInput",
    "LayerOptions",
    "MLPEncoder",
    "ModelOutput",
    "activation_layer",
    "build_encoder",
    "building_with",
    "current_layer_options",
    "register_encoder",
]
