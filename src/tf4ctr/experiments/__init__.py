"""Experiments: grids of runs stored per cell (resumable) and reports built from them.

Names are imported on first use (``tf4ctr grid --help`` needs none of them, nor torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Cell": "tf4ctr.experiments.runner",
    "Experiment": "tf4ctr.experiments.runner",
    "load_experiment": "tf4ctr.experiments.runner",
    "run_experiment": "tf4ctr.experiments.runner",
    "ResultStore": "tf4ctr.experiments.store",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf4ctr.experiments' has no attribute {name!r}")
