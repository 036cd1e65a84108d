"""The built-in demo: TF4CTR against DualMLP on SYNTHETIC data, no download needed.

The data come from :mod:`tf4ctr.data.synthetic` — a known logistic model with
pairwise interactions and a share of deliberately hard samples — so the AUC
means something, but it is not a real dataset and is labelled as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tf4ctr import run as runs
from tf4ctr.config import parse_run_config
from tf4ctr.data import SyntheticSpec, write_synthetic_dataset

# Small enough to finish in well under a minute on two cores, large enough
# for the twin encoders to matter.
DEMO_TRAIN: dict[str, Any] = {
    "batch_size": 2048,
    "epochs": 8,
    "lr": 1e-3,
    "patience": 2,
    "monitor": "auc+gauc",
    "seed": 2023,
}
DEMO_MODELS: dict[str, dict[str, Any]] = {
    "tf4ctr": {
        "model": {
            "name": "tf4ctr",
            "ssem": "ser",
            "fusion": "wsf",
            "embedding_dim": 16,
            "simple_hidden_units": [256, 256],
            "complex_hidden_units": [256, 256, 256],
            "dropout": 0.1,
            "batch_norm": True,
        },
        "loss": {"name": "tf", "alpha": 0.25, "c": 0.7, "gamma": 1.0, "embedding_l2": 0.0},
    },
    "dualmlp": {
        "model": {
            "name": "dualmlp",
            "embedding_dim": 16,
            "simple_hidden_units": [256, 256],
            "complex_hidden_units": [256, 256, 256],
            "dropout": 0.1,
            "batch_norm": True,
        },
        "loss": {"name": "bce", "embedding_l2": 0.0},
    },
}


def run_demo(
    *,
    output_dir: Path = Path("runs"),
    cache_dir: Path = Path(".tf4ctr-cache"),
    models: tuple[str, ...] = ("tf4ctr", "dualmlp"),
    spec: SyntheticSpec | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> dict[str, runs.RunResult]:
    """Generate (or reuse) the synthetic data and train each demo model on it."""
    spec = spec or SyntheticSpec()
    dataset = write_synthetic_dataset(Path(cache_dir) / "synthetic-demo", spec)
    results = {}
    for name in models:
        raw = {
            "name": f"demo-{name}",
            "dataset": str(dataset.source),
            **DEMO_MODELS[name],
            "train": {**DEMO_TRAIN, **({"epochs": epochs} if epochs else {}), "progress": progress},
            "output_dir": str(output_dir),
            "cache_dir": str(cache_dir),
        }
        config = parse_run_config(raw)
        results[name] = runs.train(config, overwrite=True, progress=progress)
    return results
