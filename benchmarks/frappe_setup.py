"""Frappe_x1 and the five speed models at the paper's settings, as the benchmarks build them
(tf4ctr_worker.py, eval_rows.py, eval_fold.py, embedding_backward.py): batch 10,000, embedding 16,
[400, 400, 400], batch norm, dropout 0.2; TF4CTR with SER + WSF and TF loss (α 0.25, c 0.7,
γ 1); embedding L2 0.1."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
#: model name → its build_model arguments beyond the name
MODELS: dict[str, dict[str, Any]] = {
    "dnn": {},
    "dualmlp": {},
    "deepfm": {},
    "dcnv2": {},
    "tf4ctr": {"ssem": "ser", "fusion": "wsf"},
}


def frappe_data(cache: Path = ROOT / ".tf4ctr-cache") -> Any:
    """Frappe_x1 prepared (from ``cache`` when it is there already)."""
    from tf4ctr.data import load_dataset_config, prepare_dataset

    config = load_dataset_config(ROOT / "configs/datasets/frappe_x1.yaml")
    return prepare_dataset(config, cache, progress=False)


def speed_config(model_name: str, **train: Any) -> Any:
    """The run config of one of MODELS on Frappe_x1: TF loss (α 0.25, c 0.7, γ 1) for TF4CTR,
    log loss for the others, embedding L2 0.1 for all; seed 2023; ``train`` overrides the
    rest of the train section (the library's defaults otherwise)."""
    from tf4ctr.config import LossConfig, RunConfig, TrainConfig

    loss = "tf" if model_name == "tf4ctr" else "bce"
    return RunConfig(
        name=f"speed-{model_name}",
        dataset=ROOT / "configs/datasets/frappe_x1.yaml",
        model={"name": model_name, **MODELS[model_name]},
        loss=LossConfig(name=loss, alpha=0.25, c=0.7, gamma=1.0, embedding_l2=0.1),
        train=TrainConfig(**{"progress": False, **train}),
    )


def speed_model(model_name: str, schema: Any, train: Any = None) -> torch.nn.Module:
    """One of MODELS, its layers built for ``train`` (a TrainConfig; the defaults if None)."""
    from tf4ctr import run
    from tf4ctr.config import TrainConfig
    from tf4ctr.models import build_model

    options = run.layer_options(train or TrainConfig())
    return build_model(model_name, schema, layer_options=options, **MODELS[model_name])


def speed_objective(model_name: str) -> Any:
    """The objective of :func:`speed_config`."""
    from tf4ctr import run

    return run.build_objective(speed_config(model_name).loss)


def frappe_trainer(model_name: str, threads: int) -> tuple[Any, Any]:
    """(Trainer, prepared Frappe_x1) for one of MODELS, built as ``tf4ctr train`` builds it."""
    from tf4ctr import run

    data = frappe_data()
    parts = run.build_parts(speed_config(model_name, num_threads=threads), data.schema)
    return parts.trainer, data


def frappe_trained(model_name: str, threads: int) -> tuple[Any, Any, Any]:
    """(Trainer, prepared Frappe_x1, validation loader of 65,536-row batches) after one epoch
    of :func:`frappe_trainer`'s model: what the evaluation benchmarks score."""
    from tf4ctr.data import BatchLoader

    trainer, data = frappe_trainer(model_name, threads)
    trainer.train_epoch(BatchLoader(data.train, 10_000, shuffle=True, seed=2023), epoch=1)
    return trainer, data, BatchLoader(data.valid, 65_536)


def run_worker(script: str, *args: str) -> dict[str, Any]:
    """``script`` run with ``args`` in a fresh process under this python; its last line of
    output is its result as JSON."""
    command = [sys.executable, script, *args]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_record(args: argparse.Namespace, out: Path, **results: Any) -> None:
    """The benchmark's arguments and ``results`` written to ``out`` (whole or not at all)."""
    from tf4ctr.fileio import write_json_atomic

    write_json_atomic({"args": {k: str(v) for k, v in vars(args).items()}, **results}, out)
    print(f"wrote {out}")
