"""Experiments: grids of runs stored per cell (resumable) and reports built from them.

Names are imported on first use (``tf4ctr grid --help`` needs none of them, nor torch).
"""

from __future__ import annotations

from tf4ctr._lazy import lazy_exports

_LAZY = {
    "Cell": "tf4ctr.experiments.runner",
    "Experiment": "tf4ctr.experiments.runner",
    "load_experiment": "tf4ctr.experiments.runner",
    "run_experiment": "tf4ctr.experiments.runner",
    "ResultStore": "tf4ctr.experiments.store",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports("tf4ctr.experiments", _LAZY, globals())
