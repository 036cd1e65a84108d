"""Runs: train a config into a run directory, load it back, evaluate, predict.

This is the Python API behind the CLI, one module a job:

* :mod:`~tf4ctr.run.setup`: parts built from a config (seeding, threads, the objective, the
  dataset, the dry check of a config, the Trainer for scoring, :func:`build_parts`);
* :mod:`~tf4ctr.run.resume`: the resume policy (what may differ, what is kept on failure);
* :mod:`~tf4ctr.run.record`: the one writer of a run's files (metrics, checkpoints);
* :mod:`~tf4ctr.run.training`: :func:`train`, the lifecycle of one run;
* :mod:`~tf4ctr.run.scoring`: :func:`load_run`, :func:`evaluate`, :func:`predict`.

A run directory holds everything needed to use the model again (file names in
:mod:`tf4ctr.rundir`): config.yaml, preprocessor.json, model.pt, metrics.json, train.log.

Names load lazily (``from tf4ctr import run; run.train(...)``), so importing the package for
one job does not import the others' dependencies.
"""

from __future__ import annotations

from tf4ctr._lazy import lazy_exports

_HOMES = {
    "setup": (
        "seed_everything",
        "configure_threads",
        "build_objective",
        "layer_options",
        "resolve_dataset",
        "require_both_classes",
        "check_config",
        "placeholder_schema",
        "count_parameters",
        "scoring_trainer",
        "build_parts",
        "RunParts",
    ),
    "resume": ("RunInterrupted", "RESUME_FREE_KEYS"),
    "record": ("RunRecord", "add_after_checkpoint"),
    "training": ("train", "RunResult", "format_metrics"),
    "scoring": ("LoadedRun", "load_run", "encode_file", "encode_blocks", "evaluate", "predict"),
}
_LAZY = {name: f"tf4ctr.run.{module}" for module, names in _HOMES.items() for name in names}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports("tf4ctr.run", _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
