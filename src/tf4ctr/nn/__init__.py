"""Layers shared by every model: embeddings and MLP blocks."""

from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.mlp import MLP, activation_layer
from tf4ctr.nn.types import FeatureInput, ModelOutput

__all__ = ["FeatureEmbedding", "FeatureInput", "MLP", "ModelOutput", "activation_layer"]
