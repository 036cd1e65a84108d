"""Parts of a run built from its config: seeding and threads, the objective, the dataset, the
dry check of a config before any data is read, and the Trainer that scores a loaded run.

:func:`build_parts` is the one place a model, its objective and its Trainer are made from a
config; :mod:`tf4ctr.run.training` and the benchmarks both use it.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from tf4ctr.config import LossConfig, RunConfig, TrainConfig
from tf4ctr.data import DatasetConfig, FeatureSchema, FieldInfo, load_dataset_config
from tf4ctr.errors import ConfigError, DataError, first_message_line
from tf4ctr.framework import CTRLoss, Objective, TwinFocusLoss
from tf4ctr.models import build_model, check_model_config
from tf4ctr.nn import FeatureInput, LayerOptions
from tf4ctr.run.capacity import require_fits
from tf4ctr.train.device import resolve_device
from tf4ctr.train.distributed import World
from tf4ctr.train.trainer import Trainer

if TYPE_CHECKING:
    from tf4ctr.run.scoring import LoadedRun


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: threads for runs whose config leaves train.num_threads unset (set by ``tf4ctr tune
#: --threads`` for itself and the workers it starts)
THREADS_ENV = "TF4CTR_NUM_THREADS"


def configure_threads(num_threads: int | None) -> None:
    """Use every core by default (or ``$TF4CTR_NUM_THREADS``); torch's own default can be
    lower in containers."""
    if num_threads is None and os.environ.get(THREADS_ENV, "").isdigit():
        num_threads = int(os.environ[THREADS_ENV])
    if num_threads is None:
        num_threads = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    torch.set_num_threads(max(1, int(num_threads)))


def layer_options(train: TrainConfig) -> LayerOptions:
    """How the layers of a model built for ``train`` compute: its ``fast_dropout`` and
    ``fold_embeddings`` switches, which the model builder hands to the layers it makes."""
    return LayerOptions(fast_dropout=train.fast_dropout, fold_embeddings=train.fold_embeddings)


def build_objective(loss: LossConfig) -> Objective:
    """The ``loss`` section as an :class:`Objective` (Eq. 12 for ``tf``)."""
    twin = TwinFocusLoss(loss.alpha, loss.c, loss.gamma) if loss.name == "tf" else None
    ctr = CTRLoss(
        loss.name if loss.name in CTRLoss.NAMES else "bce",
        focal_alpha=loss.focal_alpha,
        focal_gamma=loss.focal_gamma,
        rce_beta=loss.rce_beta,
    )
    return Objective(twin, embedding_l2=loss.embedding_l2, ctr_loss=ctr)


def resolve_dataset(config: RunConfig) -> DatasetConfig:
    if isinstance(config.dataset, Path):
        return load_dataset_config(config.dataset)
    base = config.source.parent if config.source is not None else Path.cwd()
    return load_dataset_config(config.dataset, base_dir=base)


def require_both_classes(labels: np.ndarray, where: str) -> None:
    """AUC is undefined unless a labelled split has both clicks and non-clicks."""
    positives = int(np.count_nonzero(labels))
    if positives in (0, len(labels)):
        value = 1 if positives else 0
        raise DataError(
            f"{where}: every one of its {len(labels):,} labels is {value}; AUC and early "
            "stopping need both 0 and 1"
        )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_for(config: RunConfig, schema: FeatureSchema) -> nn.Module:
    """The config's model for ``schema``, with the layer options its train section asks for."""
    options = layer_options(config.train)
    return build_model(config.model_name, schema, layer_options=options, **config.model_hparams)


def check_config(config: RunConfig) -> DatasetConfig:
    """Check everything a run config says before any data is read; returns its dataset.

    The model's keys by their rules (:func:`check_model_config`), then a dry build of the
    model on a placeholder schema of the dataset's fields and one forward pass on two rows,
    so settings that would only fail once the encoded cache is built (minutes on Criteo)
    fail now. Each message names the key and whether it came from the file or the command line.
    """
    check_model_config(config.model_name, config.model_hparams, origin=config.origin)
    device = resolve_device(config.train.device, origin=config.origin("train.device"))
    dataset = resolve_dataset(config)
    schema = placeholder_schema(dataset)
    where = config.origin("model")
    try:
        # with the real vocabularies it only grows: build_parts asks again with them
        what = f"model ({config.model_name})"
        require_fits(lambda: model_for(config, schema), what=what, device=device)
        model = model_for(config, schema)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    try:
        model.eval()
        batch = FeatureInput(
            torch.ones(2, sum(schema.widths), dtype=torch.long),
            torch.zeros(2, len(schema.numeric)),
        )
        with torch.no_grad():
            model(batch)
    except Exception as exc:  # any failure here comes from the settings, not from data
        raise ConfigError(
            f"{where}model ({config.model_name}): these settings do not make a working model "
            f"({type(exc).__name__}: {first_message_line(str(exc), 'no message')})"
        ) from None
    return dataset


def placeholder_schema(dataset: DatasetConfig) -> FeatureSchema:
    """The dataset's fields with tiny made-up vocabularies: enough to build a model."""
    fields = [
        FieldInfo(
            f.name,
            "sequence" if f.is_sequence else "categorical",
            4,
            f.max_len if f.is_sequence and f.max_len else 1,
            f.pooling or "sum",
        )
        for f in dataset.feature_cols
        if f.is_categorical
    ]
    fields += [
        FieldInfo(f.name, "numeric", 0) for f in dataset.feature_cols if not f.is_categorical
    ]
    return FeatureSchema(tuple(fields))


@dataclass
class RunParts:
    """What a run trains: the model, its objective and the Trainer that fits it."""

    model: nn.Module
    objective: Objective
    trainer: Trainer


def build_parts(
    config: RunConfig,
    schema: FeatureSchema,
    device: torch.device | str = "cpu",
    world: World | None = None,
) -> RunParts:
    """Seed, set the threads, and build the model, objective and Trainer of ``config`` for
    data of ``schema``: what ``tf4ctr train`` does before its first epoch. Under torchrun the
    ranks build the same initial weights (rank 0's are broadcast anyway) and then reseed, so
    their dropout masks differ."""
    w = world or World()
    seed_everything(config.train.seed)
    configure_threads(config.train.num_threads)
    what = f"{config.origin('model')}model ({config.model_name})"
    require_fits(lambda: model_for(config, schema), what=what, device=device)
    model = model_for(config, schema)
    if w.rank > 0:
        seed_everything(config.train.seed + 7919 * w.rank)
    objective = build_objective(config.loss)
    trainer = Trainer(model, objective, config.train, device=device, world=w)
    return RunParts(model, objective, trainer)


def scoring_trainer(run: LoadedRun) -> Trainer:
    """A Trainer that scores a loaded run as its training evaluated it."""
    configure_threads(run.config.train.num_threads)
    return Trainer(
        run.model,
        build_objective(run.config.loss),
        run.config.train,
        device=resolve_device(run.config.train.device),
    )
