"""FuxiCTR's tuner file, read as it is, and expanded into the grid FuxiCTR's autotuner runs.

```yaml
base_config: ../model_zoo/DCN/DCN_torch/config/   # holds model_config.yaml, dataset_config.yaml
base_expid: DCN_default                            # the experiment every grid point starts from
dataset_id: frappe_x1
tuner_space:                                       # a list is the values to try; a scalar, one
  embedding_regularizer: [1.e-4, 5.e-4]
  net_dropout: [0.1, 0.2]
  dnn_hidden_units: [[400, 400, 400]]              # a list-valued setting: a list of lists
```

The rules are FuxiCTR's (fuxictr/autotuner.py, enumerate_params), restated:

- a ``tuner_space`` value that is not a list stands for a list of that one value;
- every ``tuner_space`` key must be a setting of the base experiment (its ``Base`` section
  merged with ``base_expid``'s) or of the dataset, else the file is refused;
- the experiments are the Cartesian product of the model settings' value lists, in the
  order the merged model config lists its keys, times the product of the dataset settings'
  lists (a dataset already encoded, ``data_format: npz``, keeps one dataset whatever the
  lists say, as FuxiCTR does); experiment ``i`` (from 1) is named
  ``<base_expid>_<i:03d>_<hash>``, the hash being the first 8 hex digits of the MD5 of the
  characters of the settings' JSON (values as strings, keys sorted, indent 4) in sorted order;
- a base experiment whose ``dataset_id`` is ``TBD`` takes the file's ``dataset_id`` and is
  renamed ``<model>_<dataset_id>``.

Relative data paths are read as FuxiCTR reads them, against the current folder, and, failing
that, against the tuner file's folder. Each experiment becomes a tf4ctr run config
(:func:`to_run_config`): a FuxiCTR setting with no tf4ctr counterpart, or a value tf4ctr does
not run (another optimizer, a net regulariser), is refused in one line before anything trains.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from tf4ctr.errors import ConfigError
from tf4ctr.fileio import read_yaml

__all__ = ["expand_tuner", "fuxictr_expid_hash", "read_fuxictr_tuner", "to_run_config"]

#: keys a FuxiCTR tuner file may hold besides ``<dataset_id>`` (an inline dataset section)
_TOP = ("base_config", "base_expid", "dataset_id", "tuner_space", "model_config", "dataset_config")
#: FuxiCTR settings and the tf4ctr key each becomes
_GENERIC = {
    "learning_rate": "train.lr",
    "batch_size": "train.batch_size",
    "epochs": "train.epochs",
    "seed": "train.seed",
    "early_stop_patience": "train.patience",
    "embedding_regularizer": "loss.embedding_l2",
}
#: FuxiCTR settings that change nothing tf4ctr computes (file places, logging, workers)
_IGNORED = (
    "model_root", "num_workers", "verbose", "pickle_feature_encoder", "save_best_only",
    "metrics", "model_id", "dataset_id", "debug_mode", "monitor_mode", "gpu",
)  # fmt: skip
#: FuxiCTR settings tf4ctr runs at one value only: (allowed values, what tf4ctr does)
_FIXED = {
    "task": (("binary_classification",), "binary click prediction"),
    "optimizer": (("adam", "Adam"), "Adam"),
    "loss": (("binary_crossentropy", "bce"), "log loss (set loss.name in a tf4ctr config)"),
    "shuffle": ((True,), "shuffled batches"),
    "net_regularizer": ((0, 0.0, None, "0"), "no L2 on the network's weights"),
    "eval_steps": ((None,), "evaluation once an epoch"),
    "use_features": ((None,), "every feature of the dataset config"),
    "feature_specs": ((None,), "the dataset config's features"),
    "feature_config": ((None,), "the dataset config's features"),
}
#: FuxiCTR's names for settings of many models, and tf4ctr's
_MODEL_ALIASES = {
    "net_dropout": "dropout",
    "dnn_hidden_units": "hidden_units",
    "dnn_activations": "activation",
    "hidden_activations": "activation",
}
#: FuxiCTR ``monitor`` values and tf4ctr's train.monitor
_MONITORS = {
    json.dumps("AUC"): "auc",
    json.dumps("gAUC"): "gauc",
    json.dumps("logloss"): "logloss",
    json.dumps({"AUC": 1, "gAUC": 1}, sort_keys=True): "auc+gauc",
    # the monitor of FuxiCTR's own Criteo and Avazu configs
    json.dumps({"AUC": 1, "logloss": -1}, sort_keys=True): "auc-logloss",
}
_DATA_PATHS = ("train_data", "valid_data", "test_data")


def fuxictr_expid_hash(params: dict[str, Any]) -> str:
    """FuxiCTR's 8-digit experiment hash: MD5 of the sorted characters of the settings' JSON
    (every value turned into a string, keys sorted, indent 4)."""
    text = json.dumps({k: str(v) for k, v in sorted(params.items())}, indent=4)
    return hashlib.md5("".join(sorted(text)).encode("utf-8")).hexdigest()[:8]


def _error(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}")


def _yaml_sections(folder: Path, stem: str) -> list[Path]:
    single = folder / f"{stem}.yaml"
    return [single] if single.is_file() else sorted((folder / stem).glob("*.yaml"))


def _load_model(path: Path, folder: Path, expid: str) -> dict[str, Any]:
    files = _yaml_sections(folder, "model_config")
    if not files:
        raise _error(
            path, "base_config", f"{folder} holds no model_config.yaml (nor model_config/)"
        )
    found: dict[str, Any] = {}
    for f in files:
        sections = read_yaml(f)
        if isinstance(sections, dict):
            for name in ("Base", expid):
                if isinstance(sections.get(name), dict):
                    found.setdefault(name, sections[name])
    if expid not in found:
        raise _error(path, "base_expid", f"no experiment {expid!r} in {folder}'s model configs")
    params = dict(found.get("Base", {}))
    params.update(found[expid])
    if "dataset_id" not in params:
        raise _error(path, "base_expid", f"experiment {expid!r} names no dataset_id")
    params["model_id"] = expid
    return params


def _load_dataset(path: Path, raw: dict[str, Any], folder: Path, dataset_id: str) -> dict[str, Any]:
    if "dataset_config" in raw:
        sections = raw["dataset_config"]
        where = "dataset_config"
    elif isinstance(raw.get(dataset_id), dict):  # the section inline, as FuxiCTR's example has it
        return dict(raw[dataset_id])
    else:
        sections = {}
        for f in _yaml_sections(folder, "dataset_config"):
            loaded = read_yaml(f)
            if isinstance(loaded, dict) and dataset_id in loaded:
                sections = loaded
                break
        where = f"{folder}/dataset_config.yaml"
    if not isinstance(sections, dict) or not isinstance(sections.get(dataset_id), dict):
        raise _error(path, "dataset_id", f"no dataset {dataset_id!r} in {where}")
    return dict(sections[dataset_id])


def _resolve(path: Path, base_config: Any, cwd: Path) -> Path:
    for root in (cwd, path.parent):
        candidate = (root / str(base_config)).resolve()
        if candidate.is_dir():
            return candidate
    raise _error(
        path, "base_config", f"no folder {base_config!r} (looked in {cwd} and {path.parent})"
    )


def read_fuxictr_tuner(
    path: Path, raw: dict[str, Any], cwd: Path | None = None
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, list[Any]], str]:
    """(experiment id, base model settings, dataset settings, tuner space, dataset id)."""
    cwd = cwd or Path.cwd()
    dataset_key = raw.get("dataset_id")
    for k in raw:
        if k not in _TOP and k != dataset_key:
            raise _error(
                path,
                str(k),
                f"unknown key (expected one of: {', '.join(_TOP)}, or the dataset_id's section)",
            )
    for k in ("base_expid", "tuner_space"):
        if k not in raw:
            raise _error(path, k, "missing required key")
    space = raw["tuner_space"]
    if not isinstance(space, dict) or not space:
        raise _error(
            path, "tuner_space", "expected a non-empty mapping of settings to lists of values"
        )
    space = {str(k): (v if isinstance(v, list) else [v]) for k, v in space.items()}
    for k, values in space.items():
        if not values:
            raise _error(path, f"tuner_space.{k}", "an empty list leaves no experiment to run")
    expid = str(raw["base_expid"])
    folder = _resolve(path, raw["base_config"], cwd) if "base_config" in raw else path.parent
    if "model_config" in raw:
        sections = raw["model_config"]
        if not isinstance(sections, dict) or not isinstance(sections.get(expid), dict):
            raise _error(path, "model_config", f"no experiment {expid!r} in it")
        model = dict(sections[expid])
        model.setdefault("model_id", expid)
    else:
        model = _load_model(path, folder, expid)
    dataset_id = str(raw.get("dataset_id", model["dataset_id"]))
    dataset = _load_dataset(path, raw, folder, dataset_id)
    if model["dataset_id"] == "TBD":
        model["dataset_id"] = dataset_id
        expid = f"{model.get('model')}_{dataset_id}"
    unknown = [k for k in space if k not in model and k not in dataset]
    if unknown:
        raise _error(path, f"tuner_space.{unknown[0]}", "not a setting of the base experiment "
                     f"{raw['base_expid']!r} nor of dataset {dataset_id!r}")  # fmt: skip
    return expid, model, dataset, space, dataset_id


def _resolve_data(path: Path, dataset: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Relative data paths against the current folder (FuxiCTR's rule), else the file's."""
    out = dict(dataset)
    for k in _DATA_PATHS:
        if isinstance(out.get(k), str) and not Path(out[k]).is_absolute():
            here, beside = cwd / out[k], path.parent / out[k]
            out[k] = str((here if here.exists() or not beside.exists() else beside).resolve())
    return out


def expand_tuner(
    path: Path, raw: dict[str, Any], cwd: Path | None = None
) -> dict[str, dict[str, Any]]:
    """FuxiCTR's grid: ``{expid: settings}``, each settings mapping holding the model's
    settings with ``dataset_id`` and, under ``"_dataset"``, the dataset's settings."""
    cwd = cwd or Path.cwd()
    expid, model, dataset, space, dataset_id = read_fuxictr_tuner(path, raw, cwd)
    data_lists = {k: space.get(k, [v]) for k, v in dataset.items()}
    datasets: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*data_lists.values()):
        params = dict(zip(data_lists, values, strict=True))
        fixed = params.get("data_format") == "npz" or (
            params.get("data_format") == "parquet" and params.get("rebuild_dataset") is False
        )
        # hashed as written, as FuxiCTR does; the paths resolved afterwards
        name = dataset_id if fixed else f"{dataset_id}_{fuxictr_expid_hash(params)}"
        datasets[name] = _resolve_data(path, params, cwd)
    model_lists = {k: space.get(k, [v]) for k, v in model.items()}
    grid: dict[str, dict[str, Any]] = {}
    combos = itertools.product(itertools.product(*model_lists.values()), datasets)
    for i, (values, data_name) in enumerate(combos, start=1):
        params = dict(zip(model_lists, values, strict=True))
        params["dataset_id"] = data_name
        params.pop("model_id", None)
        name = f"{expid}_{i:03d}_{fuxictr_expid_hash(params)}"
        grid[name] = {
            **copy.deepcopy(params),
            "_dataset": copy.deepcopy(datasets[data_name]),
            # one dataset keeps its own name, so its runs key alike with a tf4ctr config's
            "_dataset_name": dataset_id if len(datasets) == 1 else data_name,
        }
    return grid


def _monitor(path: Path, expid: str, value: Any, mode: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    monitor = _MONITORS.get(text)
    if monitor is None or (monitor == "logloss") != (mode == "min"):
        raise _error(path, f"{expid}: monitor", f"{value!r} (monitor_mode {mode!r}) has no tf4ctr "
                     "counterpart (tf4ctr monitors AUC, gAUC, AUC+gAUC, AUC-logloss with mode max, or logloss "
                     "with mode min)")  # fmt: skip
    return monitor


def to_run_config(path: Path, expid: str, params: dict[str, Any]) -> dict[str, Any]:
    """A FuxiCTR experiment's settings as a tf4ctr run config mapping (dataset inline)."""
    from tf4ctr.models import model_defaults
    from tf4ctr.models.registry import canonical_name

    settings = {k: v for k, v in params.items() if not k.startswith("_")}
    dataset = dict(params["_dataset"])
    try:
        model_name = canonical_name(str(settings.get("model")))
    except ConfigError:
        raise _error(
            path, f"{expid}: model", f"{settings.get('model')!r} is not a tf4ctr model"
        ) from None
    defaults = model_defaults(model_name)
    raw: dict[str, Any] = {
        "name": expid,
        "dataset": {str(params.get("_dataset_name", settings.get("dataset_id"))): dataset},
        "model": {"name": model_name},
        "loss": {"name": "bce"},
        "train": {"monitor": _monitor(path, expid, settings.get("monitor", "AUC"),
                                      settings.get("monitor_mode", "max"))},
    }  # fmt: skip
    for key, value in settings.items():
        if key in _IGNORED or key in ("model", "monitor"):
            continue
        if key in _FIXED:
            allowed, what = _FIXED[key]
            if value not in allowed:
                raise _error(
                    path, f"{expid}: {key}", f"{value!r} is not supported (tf4ctr runs {what})"
                )
            continue
        if key == "group_id":
            if value is not None:
                dataset["group_col"] = value
            continue
        if key in _GENERIC:
            section, name = _GENERIC[key].split(".")
            raw[section][name] = float(value) if isinstance(value, str) else value
            continue
        name = key if key in defaults else _MODEL_ALIASES.get(key, key)
        if name not in defaults:
            raise _error(path, f"{expid}: {key}", f"FuxiCTR setting with no counterpart in tf4ctr's "
                         f"{model_name} (its settings: {', '.join(defaults)})")  # fmt: skip
        raw["model"][name] = value
    return raw
