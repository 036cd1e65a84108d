"""Data layer: dataset configs, readers, preprocessing, the encoded cache, batching, synthetic data."""

from tf4ctr.data.loader import Batch, BatchLoader
from tf4ctr.data.preprocess import EncodedSplit, FeatureSchema, FieldInfo, Preprocessor
from tf4ctr.data.readers import read_table
from tf4ctr.data.schema import DatasetConfig, FeatureSpec, LabelSpec, load_dataset_config
from tf4ctr.data.store import PreparedDataset, prepare_dataset
from tf4ctr.data.synthetic import SyntheticSpec, generate_synthetic, write_synthetic_dataset

__all__ = [
    "Batch",
    "BatchLoader",
    "DatasetConfig",
    "EncodedSplit",
    "FeatureSchema",
    "FeatureSpec",
    "FieldInfo",
    "LabelSpec",
    "PreparedDataset",
    "Preprocessor",
    "SyntheticSpec",
    "generate_synthetic",
    "load_dataset_config",
    "prepare_dataset",
    "read_table",
    "write_synthetic_dataset",
]
