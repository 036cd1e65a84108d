"""Data: dataset configs, readers, streaming preprocessing, the encoded cache, batch loading.

Names are imported on first use (``tf4ctr data --help`` needs none of them, nor torch).
"""

from __future__ import annotations

from tf4ctr._lazy import lazy_exports

_LAZY = {
    "Batch": "tf4ctr.data.loader",
    "BatchLoader": "tf4ctr.data.loader",
    "EncodedSplit": "tf4ctr.data.encoded",
    "FeatureSchema": "tf4ctr.data.encoded",
    "FieldInfo": "tf4ctr.data.encoded",
    "Preprocessor": "tf4ctr.data.preprocess",
    "read_table": "tf4ctr.data.readers",
    "DatasetConfig": "tf4ctr.data.schema",
    "FeatureSpec": "tf4ctr.data.schema",
    "LabelSpec": "tf4ctr.data.schema",
    "load_dataset_config": "tf4ctr.data.schema",
    "PreparedDataset": "tf4ctr.data.store",
    "prepare_dataset": "tf4ctr.data.store",
    "SyntheticSpec": "tf4ctr.data.synthetic",
    "generate_synthetic": "tf4ctr.data.synthetic",
    "write_synthetic_dataset": "tf4ctr.data.synthetic",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports("tf4ctr.data", _LAZY, globals())
