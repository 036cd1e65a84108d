"""A search tuner file, parsed and checked before anything trains.

```yaml
name: frappe_x1_tf4ctr_tune
base: ../frappe_x1/tf4ctr.yaml     # the run config every trial overrides
n_trials: 60                       # the budget: finished + pruned trials, over all processes
sampler: tpe                       # tpe | random
pruner: median                     # median | halving | none (fed each epoch's valid monitor)
seeds: 5                           # the best trial and the base config, re-run on 5 seeds
space:
  train.lr: {low: 1.0e-4, high: 3.0e-3, log: true}
  model.dropout: {low: 0.0, high: 0.5, step: 0.1}
  model.embedding_dim: {choices: [10, 16, 32]}
```

A range of integers (``low`` and ``high`` both integers) is drawn as integers. Every range
end and every choice is put into the base config and checked as a run config would be
(:func:`check_space`), so a range the config would reject fails here, in one line, and not
in trial 37. The FuxiCTR tuner format (``tuner_space``) is :mod:`tf4ctr.tune.fuxictr`'s.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf4ctr.config import apply_overrides, parse_run_config
from tf4ctr.errors import ConfigError
from tf4ctr.models import check_model_config
from tf4ctr.rundir import is_run_name

__all__ = ["Dimension", "SearchSpec", "apply_params", "check_space", "parse_search"]

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
_TOP = (
    "name", "base", "n_trials", "sampler", "sampler_seed", "pruner", "seeds", "space", "store",
    "study", "runs_dir", "reuse", "description", "heartbeat_seconds", "start_with_base",
)  # fmt: skip
_DIM = ("low", "high", "log", "step", "choices")


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a float or integer range (``log``, ``step``) or ``choices``."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high))

    def suggest(self, trial: Any) -> Any:
        """Draw this setting for an Optuna trial (lists among choices come back as lists)."""
        if self.choices is not None:
            # Optuna stores categorical choices as JSON-able scalars: a list is drawn by index
            if any(isinstance(c, list | dict) for c in self.choices):
                texts = [json.dumps(c) for c in self.choices]
                return json.loads(trial.suggest_categorical(self.key, texts))
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def optuna_value(self, value: Any) -> Any:
        """``value`` as :meth:`suggest` stores it in the study (for enqueueing a trial)."""
        if self.choices is not None and any(isinstance(c, list | dict) for c in self.choices):
            return json.dumps(value)
        return value

    def from_optuna(self, value: Any) -> Any:
        """The setting's value for what the study stored (the inverse of :meth:`optuna_value`)."""
        if self.choices is not None and any(isinstance(c, list | dict) for c in self.choices):
            return json.loads(value)
        return value

    def holds(self, value: Any) -> bool:
        """Whether ``value`` lies in this dimension (the base config's value, to start from)."""
        if self.choices is not None:
            return any(json.dumps(value) == json.dumps(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high and (not self.is_int or isinstance(value, int))

    def ends(self) -> list[Any]:
        """The values that stand for the whole dimension when checking the config."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass(frozen=True)
class SearchSpec:
    path: Path
    name: str
    base: Path
    space: tuple[Dimension, ...]
    n_trials: int
    sampler: str = "tpe"
    sampler_seed: int | None = None
    pruner: str = "median"
    seeds: int = 5
    store: Path | None = None
    study: Path | None = None
    runs_dir: Path | None = None
    reuse: tuple[Path, ...] = ()
    description: str = ""
    heartbeat_seconds: int = 60
    start_with_base: bool = True
    base_raw: dict[str, Any] = field(default_factory=dict)


def _error(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(path: Path, raw: dict[str, Any], key: str, default: int, least: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _error(path, key, f"expected an integer >= {least}, found {value!r}")
    return value


def _dimension(path: Path, key: str, raw: Any) -> Dimension:
    where = f"space.{key}"
    if not isinstance(raw, dict) or not raw:
        raise _error(path, where, "expected a mapping: {low, high[, log, step]} or {choices}")
    for k in raw:
        if k not in _DIM:
            raise _error(path, f"{where}.{k}", f"unknown key (expected one of: {', '.join(_DIM)})")
    if "choices" in raw:
        if set(raw) != {"choices"}:
            raise _error(path, where, "choices exclude low, high, log and step")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise _error(path, f"{where}.choices", f"expected a non-empty list, found {choices!r}")
        texts = [json.dumps(c, sort_keys=True) for c in choices]
        if len(set(texts)) != len(texts):
            raise _error(path, f"{where}.choices", "a value appears twice")
        return Dimension(key, choices=tuple(choices))
    for k in ("low", "high"):
        if k not in raw:
            raise _error(path, where, f"missing {k} (or give choices)")
        if isinstance(raw[k], str):  # YAML reads 1e-3 (no dot) as a string
            with contextlib.suppress(ValueError):
                raw = {**raw, k: float(raw[k])}
        if not _number(raw[k]):
            raise _error(path, f"{where}.{k}", f"expected a number, found {raw[k]!r}")
    low, high = raw["low"], raw["high"]
    if not low < high:
        raise _error(path, where, f"expected low < high, found low {low!r} and high {high!r}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise _error(path, f"{where}.log", f"expected true or false, found {log!r}")
    if log and low <= 0:
        raise _error(path, f"{where}.log", f"a log scale needs low > 0, found {low!r}")
    step = raw.get("step")
    if step is not None:
        if not _number(step) or step <= 0:
            raise _error(path, f"{where}.step", f"expected a number > 0, found {step!r}")
        if log:
            raise _error(path, f"{where}.step", "a step and a log scale exclude each other")
    return Dimension(key, low, high, log, step)


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base run config with each dotted key set to its drawn value."""
    return apply_overrides(copy.deepcopy(base), [f"{k}={json.dumps(v)}" for k, v in params.items()])


def check_space(path: Path, base: dict[str, Any], space: tuple[Dimension, ...]) -> None:
    """Put every range end and every choice into the base config, one at a time, and check
    it as a run would be checked (config and model settings): one line naming the key."""
    for dim in space:
        for value in dim.ends():
            try:
                raw = apply_params(base, {dim.key: value})
                parsed = parse_run_config(raw, source=path)
                check_model_config(parsed.model_name, parsed.model_hparams)
            except ConfigError as exc:
                detail = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else exc
                raise _error(path, f"space.{dim.key}", f"{value!r} is rejected: {detail}") from None


def _base_values(spec: SearchSpec) -> dict[str, Any]:
    """Every setting the base config runs with, dotted, the defaults it leaves out included
    (a model's from its builder), JSON-normal (lists, not tuples)."""
    from tf4ctr.models import model_defaults

    parsed = parse_run_config(spec.base_raw, source=spec.path)
    model = {**model_defaults(parsed.model_name), **parsed.model_hparams}
    sections = {"model": model, "loss": dataclasses.asdict(parsed.loss),
                "train": dataclasses.asdict(parsed.train)}  # fmt: skip
    flat = {f"{s}.{k}": v for s, values in sections.items() for k, v in values.items()}
    return json.loads(json.dumps(flat, default=str))


def base_params(spec: SearchSpec) -> dict[str, Any]:
    """The base config's value of each searched key that lies in its dimension."""
    out = {}
    values = _base_values(spec)
    for dim in spec.space:
        value = values.get(dim.key)
        if value is not None and dim.holds(value):
            out[dim.key] = value
    return out


def parse_search(path: Path, raw: dict[str, Any], read_base: Any) -> SearchSpec:
    """Check a search tuner file; ``read_base(path)`` reads the base run config."""
    for k in raw:
        if k not in _TOP:
            raise _error(path, str(k), f"unknown key (expected one of: {', '.join(_TOP)})")
    for k in ("name", "base", "space", "n_trials"):
        if k not in raw:
            raise _error(path, k, "missing required key")
    space = raw["space"]
    if not isinstance(space, dict) or not space:
        raise _error(path, "space", "expected a non-empty mapping of dotted config keys")
    for k, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if raw.get(k, choices[0]) not in choices:
            raise _error(path, k, f"expected one of {', '.join(choices)}, found {raw[k]!r}")
    reuse = raw.get("reuse", [])
    if not isinstance(reuse, list) or not all(isinstance(r, str) for r in reuse):
        raise _error(path, "reuse", "expected a list of result-store paths")
    for k in ("name", "base", "store", "study", "runs_dir"):
        if k in raw and (not isinstance(raw[k], str) or not raw[k]):
            raise _error(path, k, f"expected a string, found {raw[k]!r}")
    flag = raw.get("start_with_base", True)
    if not isinstance(flag, bool):
        raise _error(path, "start_with_base", f"expected true or false, found {flag!r}")
    sampler_seed = raw.get("sampler_seed")
    if sampler_seed is not None and (
        isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int)
    ):
        raise _error(path, "sampler_seed", f"expected an integer, found {sampler_seed!r}")
    if not is_run_name(str(raw["name"])):
        raise _error(
            path,
            "name",
            f"expected one folder name (letters, digits, _ - .), found {raw['name']!r}",
        )
    base = (path.parent / raw["base"]).resolve()
    base_raw = read_base(base)
    dims = tuple(_dimension(path, str(k), v) for k, v in space.items())
    for dim in dims:
        if dim.key.split(".")[0] not in ("model", "loss", "train") or "." not in dim.key:
            raise _error(
                path, f"space.{dim.key}", "expected a dotted key under model, loss or train"
            )
        if dim.key == "train.seed":
            raise _error(path, "space.train.seed", "the seed is not a hyperparameter (see seeds)")
    check_space(path, base_raw, dims)

    def relative(key: str) -> Path | None:
        return (path.parent / raw[key]).resolve() if key in raw else None

    return SearchSpec(
        path=path,
        name=str(raw["name"]),
        base=base,
        space=dims,
        n_trials=_count(path, raw, "n_trials", 1, 1),
        sampler=raw.get("sampler", "tpe"),
        sampler_seed=sampler_seed,
        pruner=raw.get("pruner", "median"),
        seeds=min(_count(path, raw, "seeds", 5, 0), 20),
        store=relative("store"),
        study=relative("study"),
        runs_dir=relative("runs_dir"),
        reuse=tuple((path.parent / r).resolve() for r in reuse),
        description=str(raw.get("description", "")),
        heartbeat_seconds=_count(path, raw, "heartbeat_seconds", 60, 1),
        start_with_base=flag,
        base_raw=base_raw,
    )
