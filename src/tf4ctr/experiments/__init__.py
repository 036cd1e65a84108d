"""Experiments: grids of runs stored per cell (resumable) and reports built from them."""

from tf4ctr.experiments.runner import Cell, Experiment, ResultStore, load_experiment, run_experiment

__all__ = ["Cell", "Experiment", "ResultStore", "load_experiment", "run_experiment"]
