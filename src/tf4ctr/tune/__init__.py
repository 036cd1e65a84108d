"""Tuning: FuxiCTR's tuner files expanded into grids, and Optuna searches whose trials are
ordinary, keyed grid cells (so a trial is never trained twice); ``tf4ctr tune``.

Names are imported on first use (``tf4ctr tune --help`` needs neither Optuna nor torch).
"""

from __future__ import annotations

from tf4ctr._lazy import lazy_exports

_LAZY = {
    "load_tuner": "tf4ctr.tune.search",
    "run_grid": "tf4ctr.tune.search",
    "run_search": "tf4ctr.tune.search",
    "search_report": "tf4ctr.tune.report",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports("tf4ctr.tune", _LAZY, globals())
