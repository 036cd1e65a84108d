"""The run config: one YAML file naming a dataset, a model, a loss and training settings.

```yaml
name: tf4ctr_frappe
dataset: ../datasets/frappe_x1.yaml   # a dataset config file, or the mapping inline
model: {name: tf4ctr, ssem: ser, fusion: wsf, dropout: 0.2}
loss: {name: tf, alpha: 0.25, c: 0.7, gamma: 1.0, embedding_l2: 0.1}
train: {batch_size: 10000, epochs: 100, lr: 1.0e-3, patience: 2, monitor: auc+gauc}
```

Every section is validated into a typed object; an unknown key or a value of
the wrong type is a :class:`ConfigError` that names the key. Command-line
overrides use dotted keys: ``train.lr=1e-4 model.dropout=0.1``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tf4ctr.errors import ConfigError
from tf4ctr.fileio import read_yaml
from tf4ctr.rundir import is_run_name

#: train.monitor: early stopping maximises it ("logloss": its negative; "auc-logloss": AUC minus
#: logloss, FuxiCTR's {'AUC': 1, 'logloss': -1} with monitor_mode max)
MONITORS = ("auc", "auc+gauc", "auc-logloss", "gauc", "logloss")
#: the values of train.shuffle (tf4ctr.data.shuffle)
SHUFFLES = ("full", "block")
# Parameters and their updates are float32: a setting beyond this range is infinite there.
FLOAT32_MAX = 3.4028234663852886e38  # float(np.finfo(np.float32).max)
#: torch.optim.Adam's default first-moment decay, which the Trainer uses
ADAM_BETA1 = 0.9
LOSSES = ("bce", "focal", "rce", "tf")
#: where ``train.log_to`` may send each epoch's numbers besides metrics.json (tf4ctr.run.tracking)
TRACKERS = ("tensorboard", "mlflow")
#: what a warm start (train.init_from) does with the parent's numeric scalers
INIT_NUMERIC = ("keep", "refresh")


@dataclass(frozen=True)
class LossConfig:
    """``loss`` section, applied to any model.

    ``bce``: log loss on the fused logit. ``focal``: focal loss (``focal_alpha``,
    ``focal_gamma``). ``rce``: R-CE, log loss reweighted by p_t^``rce_beta``.
    ``tf``: Eq. 12, log loss plus the Twin Focus loss (``alpha``, ``c``, ``gamma``
    of Eq. 7) on the two encoder logits. ``embedding_l2`` adds (λ/2)·‖E‖².
    """

    name: str = "bce"
    alpha: float = 0.25
    c: float = 0.7
    gamma: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    rce_beta: float = 0.25
    embedding_l2: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """``train`` section: the paper code's protocol (Adam, patience 2, LR ×0.1 on plateau)."""

    batch_size: int = 10_000
    epochs: int = 100
    lr: float = 1e-3
    patience: int = 2
    monitor: str = "auc+gauc"
    reduce_lr_factor: float = 0.1
    min_lr: float = 1e-6
    clip_grad_norm: float = 10.0
    seed: int = 2023
    eval_batch_size: int = 65_536
    num_threads: int | None = None
    progress: bool = True
    #: sparse embedding gradients + lazy row-wise Adam (for huge vocabularies);
    #: off by default: the paper used dense Adam
    sparse_embedding: bool = False
    #: dropout masks from the cheap generator (tf4ctr.nn.dropout), the default since it was
    #: shown to train TF4CTR on Frappe_x1 alike (configs/experiments/
    #: frappe_x1_fast_dropout_extended.yaml); false: torch's own nn.functional.dropout masks
    fast_dropout: bool = True
    #: evaluate with each MLP's first layer folded into the embedding table it reads
    #: (tf4ctr.nn.fold): one table row sum per field instead of the lookup and the first
    #: matrix product. The same function; logits may differ in their last digits (~1e-7), so
    #: the setting is part of a result's key. False: the layer-by-layer arithmetic of training
    fold_embeddings: bool = True
    #: after every epoch, count well / poorly / misclassified samples of train, valid
    #: and test (the paper's Figures 2 and 10); costs one more pass over train and test
    record_difficulty: bool = False
    #: in the first epoch, the norm of the gradient reaching z_s and z_c, per batch
    #: (the paper's Figure 5)
    record_logit_grads: bool = False
    #: a finished run to start from (continual training, tf4ctr.run.warm_start): its weights,
    #: its vocabularies extended by this data's new values; a path from the current folder
    init_from: str | None = None
    #: with init_from: start the optimizers from the parent's state at its best epoch
    #: (optimizer.pt; Adam's moments and step counts, new embedding rows at zero moments)
    #: instead of fresh ones
    init_optimizer: bool = False
    #: with init_from: the numeric fields' scalers (StandardScaler / MinMaxScaler statistics)
    #: "keep" the parent's, so a number means to the warm-started model what it meant to the
    #: parent, or "refresh": fitted on this run's train split, for numbers that drift
    init_numeric: str = "keep"
    #: where the model trains: auto (CUDA when present, else CPU), cpu, cuda or cuda:N
    device: str = "auto"
    #: read the encoded cache memory-mapped instead of loading it into RAM (data larger than
    #: memory); the batches, and so the results, are the same
    memory_map: bool = False
    #: the order of each training epoch: "full" (a permutation of every row) or "block"
    #: (tf4ctr.data.shuffle: blocks of shuffle_block_rows consecutive rows in a random order,
    #: rows shuffled within each buffer of shuffle_buffer_blocks blocks), for a memory-mapped
    #: cache read from disk rather than from the page cache
    shuffle: str = "full"
    shuffle_block_rows: int = 4096
    shuffle_buffer_blocks: int = 64
    #: trackers that also receive each epoch's losses, validation metrics, lr and samples/s
    #: (TRACKERS; tf4ctr.run.tracking): they change no result, so no key holds them
    log_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    name: str
    dataset: Any  # path to a dataset YAML, or an inline mapping
    model: dict[str, Any]
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs"
    cache_dir: str = ".tf4ctr-cache"
    source: Path | None = None
    #: (dotted key, override as typed) for each key the command line set
    overrides: tuple[tuple[str, str], ...] = ()

    def origin(self, key: str) -> str:
        """Error-message prefix naming where ``key``'s value came from (file or command line)."""
        return _Where(self.source, dict(self.overrides))(key)

    @property
    def model_name(self) -> str:
        return str(self.model["name"])

    @property
    def model_hparams(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, as written into the run directory."""
        return {
            "name": self.name,
            "dataset": str(self.dataset) if isinstance(self.dataset, Path) else self.dataset,
            "model": dict(self.model),
            "loss": dataclasses.asdict(self.loss),
            "train": dataclasses.asdict(self.train),
            "output_dir": self.output_dir,
            "cache_dir": self.cache_dir,
        }


_TOP_KEYS = ("name", "dataset", "model", "loss", "train", "output_dir", "cache_dir")


class _Where:
    """Where a key's value came from, for error messages: the file, or the command line.

    Called with a dotted key, it gives the message prefix: ``run.yaml: `` for a value from
    the file, ``command line (train.lr=1e300): `` for one set by an override.
    """

    def __init__(self, source: Path | None, overrides: dict[str, str] | None = None) -> None:
        self.source = source
        self.overrides = overrides or {}

    def __call__(self, key: str = "") -> str:
        for k, item in self.overrides.items():
            if key == k or key.startswith(k + ".") or k.startswith(key + "." if key else "\0"):
                return f"command line ({item}): "
        return f"{self.source}: " if self.source else ""

    def __str__(self) -> str:
        return self()


def _coerce(value: Any, annotation: str, key: str, where: _Where | str) -> Any:
    """Check a scalar against a dataclass field's annotation (given as a string)."""
    if isinstance(where, _Where):
        where = where(key)
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}{key}: must not be empty")
    base = annotation.replace("| None", "").strip()
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}{key}: expected true or false, got {value!r}")
    if base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}{key}: expected an integer, got {value!r}")
    if base == "float":
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value) and abs(value) <= FLOAT32_MAX:
                return float(value)
            raise ConfigError(f"{where}{key}: expected a finite number, got {value!r}")
        raise ConfigError(f"{where}{key}: expected a number, got {value!r}")
    if base == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}{key}: expected a string, got {value!r}")
    if base == "tuple[str, ...]":
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}{key}: expected a list of names, got {value!r}")
    return value


def _section(cls: type, raw: Any, key: str, where: _Where) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where(key)}{key}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for k, v in raw.items():
        if k not in fields:
            raise ConfigError(
                f"{where(f'{key}.{k}')}{key}.{k}: unknown key (expected one of: {', '.join(fields)})"
            )
        values[k] = _coerce(v, str(fields[k].type), f"{key}.{k}", where)
    return cls(**values)


def _positive(value: float, key: str, where: _Where, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            f"{where(key)}{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}"
        )


def parse_run_config(
    raw: Any, source: Path | None = None, *, overrides: dict[str, str] | None = None
) -> RunConfig:
    """Validate a run config mapping (already loaded from YAML).

    ``overrides`` maps each dotted key set on the command line to the override as typed,
    so that an error names where its value came from.
    """
    where = _Where(source, overrides)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}expected a mapping at the top level")
    for k in raw:
        if k not in _TOP_KEYS:
            raise ConfigError(
                f"{where(k)}{k}: unknown key (expected one of: {', '.join(_TOP_KEYS)})"
            )
    for k in ("name", "dataset", "model"):
        if k not in raw:
            raise ConfigError(f"{where}{k}: missing required key")
    name = _coerce(raw["name"], "str", "name", where)
    if not is_run_name(name):
        raise ConfigError(
            f"{where('name')}name: must be one folder name of letters, digits, '_', '-' or '.', "
            f"not starting with '.', got {name!r}"
        )
    dataset = raw["dataset"]
    if isinstance(dataset, str):
        path = Path(dataset)
        if not path.is_absolute() and source is not None:
            path = (source.parent / path).resolve()
        dataset = path
    elif not isinstance(dataset, dict):
        raise ConfigError(f"{where('dataset')}dataset: expected a file path or a mapping")
    model = raw["model"]
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, dict) or "name" not in model:
        raise ConfigError(f"{where('model.name')}model.name: missing required key")
    if not isinstance(model["name"], str):
        raise ConfigError(
            f"{where('model.name')}model.name: expected a model name, got {model['name']!r}"
        )
    loss = _section(LossConfig, raw.get("loss"), "loss", where)
    train = _section(TrainConfig, raw.get("train"), "train", where)
    _check_loss(loss, where)
    _check_train(train, where)
    return RunConfig(
        name=name,
        dataset=dataset,
        model=dict(model),
        loss=loss,
        train=train,
        output_dir=_coerce(raw.get("output_dir", "runs"), "str", "output_dir", where),
        cache_dir=_coerce(raw.get("cache_dir", ".tf4ctr-cache"), "str", "cache_dir", where),
        source=source,
        overrides=tuple((overrides or {}).items()),
    )


def _check_loss(loss: LossConfig, where: _Where) -> None:
    if loss.name not in LOSSES:
        raise ConfigError(
            f"{where('loss.name')}loss.name: expected one of {', '.join(LOSSES)}, got {loss.name!r}"
        )
    for k in ("alpha", "c", "focal_alpha"):
        v = getattr(loss, k)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{where('loss.' + k)}loss.{k}: must be in [0, 1], got {v}")
    for k in ("gamma", "focal_gamma", "rce_beta", "embedding_l2"):
        _positive(getattr(loss, k), f"loss.{k}", where, allow_zero=True)


def _check_train(train: TrainConfig, where: _Where) -> None:
    if train.monitor not in MONITORS:
        raise ConfigError(
            f"{where('train.monitor')}train.monitor: expected one of {', '.join(MONITORS)}, "
            f"got {train.monitor!r}"
        )
    if train.init_optimizer and train.init_from is None:
        raise ConfigError(
            f"{where('train.init_optimizer')}train.init_optimizer: true needs train.init_from "
            "(the finished run whose optimizer state to start from)"
        )
    if train.init_numeric not in INIT_NUMERIC:
        raise ConfigError(
            f"{where('train.init_numeric')}train.init_numeric: expected one of "
            f"{', '.join(INIT_NUMERIC)}, got {train.init_numeric!r}"
        )
    if train.init_numeric != "keep" and train.init_from is None:
        raise ConfigError(
            f"{where('train.init_numeric')}train.init_numeric: {train.init_numeric} needs "
            "train.init_from (the finished run whose scalers it would replace)"
        )
    for k in ("batch_size", "epochs", "lr", "eval_batch_size"):
        _positive(getattr(train, k), f"train.{k}", where)
    for k in ("patience", "clip_grad_norm", "min_lr", "seed"):
        _positive(getattr(train, k), f"train.{k}", where, allow_zero=True)
    if train.shuffle not in SHUFFLES:
        raise ConfigError(
            f"{where('train.shuffle')}train.shuffle: expected one of {', '.join(SHUFFLES)}, "
            f"got {train.shuffle!r}"
        )
    for k in ("shuffle_block_rows", "shuffle_buffer_blocks"):
        value = getattr(train, k)  # an int already: parsing refused any other type
        if value < 1:
            raise ConfigError(
                f"{where('train.' + k)}train.{k}: expected a positive integer, got {value!r}"
            )
    # Adam's first step moves a parameter by lr / (1 - beta1): beyond float32 it cannot
    if train.lr / (1 - ADAM_BETA1) > FLOAT32_MAX:
        raise ConfigError(
            f"{where('train.lr')}train.lr: {train.lr:g} is too large: Adam's first step, "
            f"lr / (1 - {ADAM_BETA1}), overflows a float32 parameter; expected at most "
            f"{FLOAT32_MAX * (1 - ADAM_BETA1):.3g} (the paper uses 1e-3)"
        )
    if train.num_threads is not None:
        _positive(train.num_threads, "train.num_threads", where)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", train.device):
        raise ConfigError(
            f"{where('train.device')}train.device: expected auto, cpu, cuda or cuda:N, "
            f"got {train.device!r}"
        )
    for name in train.log_to:
        if name not in TRACKERS:
            raise ConfigError(
                f"{where('train.log_to')}train.log_to: unknown tracker {name!r} (expected any "
                f"of: {', '.join(TRACKERS)})"
            )
    if not 0 < train.reduce_lr_factor <= 1:
        raise ConfigError(
            f"{where('train.reduce_lr_factor')}train.reduce_lr_factor: must be in (0, 1], "
            f"got {train.reduce_lr_factor}"
        )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides; values are parsed as YAML (``[400,400]``, ``true``, ``1e-3``)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=1e-4")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from None
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str) and part == "model":
                child = node[part] = {"name": child}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a run config file."""
    path = Path(path).resolve()
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    overrides = overrides or []
    keys = {item.partition("=")[0]: item for item in overrides}
    return parse_run_config(apply_overrides(raw, overrides), source=path, overrides=keys)


# -- the history of defaults ------------------------------------------------------
# A stored record or an older run directory leaves out settings that did not exist, or had
# another default, when it was written; these read such a config as it ran.

#: Every train and loss setting that changes a result, with the value keys leave out. Frozen:
#: when a default in tf4ctr.config changes, this table keeps the old one (a test checks every
#: setting is listed, so a new one is added here with the default it is born with).
KEYED_AGAINST: dict[str, dict[str, Any]] = {
    "train": {
        "batch_size": 10_000,
        "epochs": 100,
        "lr": 1e-3,
        "patience": 2,
        "monitor": "auc+gauc",
        "reduce_lr_factor": 0.1,
        "min_lr": 1e-6,
        "clip_grad_norm": 10.0,
        "seed": 2023,
        "sparse_embedding": False,
        "fast_dropout": False,  # the default until 2026-12-02; True since
        "fold_embeddings": False,  # born 2026-12-02 with default True; False is what ran before
        "record_difficulty": False,
        "record_logit_grads": False,
        "init_from": None,  # born 2026-12-07
        "init_optimizer": False,  # born 2026-12-07
        "init_numeric": "keep",  # born 2026-12-07
        "shuffle": "full",  # born 2026-12-07, with the two below
        "shuffle_block_rows": 4096,
        "shuffle_buffer_blocks": 64,
    },
    "loss": {
        "name": "bce",
        "alpha": 0.25,
        "c": 0.7,
        "gamma": 1.0,
        "focal_alpha": 0.25,
        "focal_gamma": 2.0,
        "rce_beta": 0.25,
        "embedding_l2": 0.0,
    },
}


def with_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A copy of ``config`` and, by section name, its train and loss mappings within the copy
    (an absent or null one made empty; one that is not a mapping left out) to fill in."""
    out = json.loads(json.dumps(config, default=str))
    sections: dict[str, dict[str, Any]] = {}
    for section in KEYED_AGAINST:
        if out.get(section) is None:
            out[section] = {}
        if isinstance(out[section], dict):
            sections[section] = out[section]
    return out, sections


def settings_of_its_day(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config written earlier (a stored record's, a run directory's) with every
    train and loss setting it leaves out filled with ``KEYED_AGAINST``'s value: what such a
    config ran with before the setting existed or its default changed, not today's default."""
    filled, sections = with_settings(config)
    for section, given in sections.items():
        for name, then in KEYED_AGAINST[section].items():
            given.setdefault(name, then)
    return filled
