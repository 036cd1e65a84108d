"""Models registered by name, built from a schema and keyword hyperparameters.

A registered builder is a function ``(schema, **hparams) -> nn.Module`` whose
keyword defaults are the model's defaults; the signature doubles as the list
of accepted config keys, so a typo in a YAML file is caught by name.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from torch import nn

from tf4ctr.errors import ConfigError
from tf4ctr.nn.building import LayerOptions, building_with
from tf4ctr.nn.types import SchemaLike
from tf4ctr.registry import Registry

Builder = Callable[..., nn.Module]
MODELS: Registry[Builder] = Registry("model")


def register(name: str, *aliases: str) -> Callable[[Builder], Builder]:
    """Decorator: make a builder available as ``model.name`` in configs."""
    return MODELS.register(name, *aliases)


def canonical_name(name: str) -> str:
    try:
        return MODELS.canonical(name)
    except ValueError as exc:
        raise ConfigError(f"model.name: {exc}") from None


def available_models() -> list[str]:
    return sorted(MODELS)


def model_defaults(name: str) -> dict[str, Any]:
    """The builder's keyword defaults: the model's full default config."""
    sig = inspect.signature(MODELS[canonical_name(name)])
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_model_config(
    name: str, hparams: dict[str, Any], origin: Callable[[str], str] | None = None
) -> str:
    """Check the model name and every hyperparameter's name, type and range.

    Cheap, before any data is read. The rules follow the builders' defaults: a key whose
    default is a tuple of sizes takes a list of integers >= 1, an integer size >= 1 (a layer
    count >= 0), a dropout rate [0, 1), a flag true/false, any other number a finite one.
    ``origin(key)`` gives the message prefix that says where the value came from.
    """
    where = origin or (lambda key: "")
    prefix = where("model.name")
    if not isinstance(name, str):
        raise ConfigError(f"{prefix}model.name: expected a model name, got {name!r}")
    try:
        key = canonical_name(name)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    allowed = model_defaults(key)
    for k, value in hparams.items():
        if k not in allowed:
            raise ConfigError(
                f"{where('model.' + k)}model.{k}: unknown key for model {key!r} "
                f"(expected one of: {', '.join(allowed)})"
            )
        problem = _hparam_problem(k, value, allowed[k])
        if problem is not None:
            raise ConfigError(f"{where('model.' + k)}model.{k}: {problem}, got {value!r}")
    return key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hparam_problem(key: str, value: Any, default: Any) -> str | None:
    """What is wrong with ``value`` for a key whose default is ``default`` (None: nothing)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, tuple) or key.endswith("hidden_units"):
        if value is None and default is None:
            return None
        if not isinstance(value, list | tuple) or not all(_is_int(v) and v >= 1 for v in value):
            return "expected a list of layer sizes, each an integer >= 1"
        return None
    if _is_int(default) or (default is None and key.endswith("_dim")):
        if value is None and default is None:
            return None
        least = 0 if key.endswith("layers") else 1
        if not _is_int(value) or value < least:
            return f"expected an integer >= {least}"
        return None
    if isinstance(default, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "expected a number"
        if not math.isfinite(value):
            return "expected a finite number"
        if "dropout" in key or key.endswith("_ratio"):
            return None if 0 <= value < 1 else "must be in [0, 1)"
        if key == "temperature" and value <= 0:
            return "must be > 0"
        return None
    if isinstance(default, str):
        return None if isinstance(value, str) else "expected a string"
    return None


def build_model(
    name: str, schema: SchemaLike, *, layer_options: LayerOptions | None = None, **hparams: Any
) -> nn.Module:
    """Build a registered model; unknown or invalid hyperparameters are a ConfigError.

    ``layer_options`` (tf4ctr.nn.building) say how its dropout and MLP layers compute; left
    out, they compute as torch's own layers do.
    """
    key = check_model_config(name, hparams)
    try:
        with building_with(layer_options or LayerOptions()):
            return MODELS[key](schema, **hparams)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model ({key}): {exc}") from None
