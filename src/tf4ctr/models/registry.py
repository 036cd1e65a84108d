"""Models registered by name, built from a schema and keyword hyperparameters.

A registered builder is a function ``(schema, **hparams) -> nn.Module`` whose
keyword defaults are the model's defaults; the signature doubles as the list
of accepted config keys, so a typo in a YAML file is caught by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from torch import nn

from tf4ctr.errors import ConfigError


class SchemaLike(Protocol):
    """What a model needs to know about the data."""

    @property
    def vocab_sizes(self) -> list[int]: ...

    @property
    def numeric(self) -> tuple: ...


def table_layout(schema: SchemaLike) -> dict[str, Any]:
    """How input columns map to fields (sequence fields); plain schemas have one column per field.

    A schema may leave ``table_layout`` out (a hand-made schema of plain categorical fields).
    """
    layout = getattr(schema, "table_layout", None)
    if layout is None:
        n = len(schema.vocab_sizes)
        return {"widths": [1] * n, "pooling": ["sum"] * n}
    return dict(layout)


Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *aliases: str) -> Callable[[Builder], Builder]:
    """Decorator: make a builder available as ``model.name`` in configs."""

    def wrap(builder: Builder) -> Builder:
        key = name.lower()
        if key in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[key] = builder
        for alias in aliases:
            _ALIASES[alias.lower()] = key
        return builder

    return wrap


def canonical_name(name: str) -> str:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ConfigError(
            f"model.name: unknown model {name!r} (expected one of: {', '.join(sorted(_REGISTRY))})"
        )
    return key


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def model_defaults(name: str) -> dict[str, Any]:
    """The builder's keyword defaults: the model's full default config."""
    sig = inspect.signature(_REGISTRY[canonical_name(name)])
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_model_config(name: str, hparams: dict[str, Any]) -> str:
    """Check the model name and hyperparameter names (cheap: before any data is read)."""
    key = canonical_name(name)
    allowed = model_defaults(key)
    for k in hparams:
        if k not in allowed:
            raise ConfigError(
                f"model.{k}: unknown key for model {key!r} (expected one of: {', '.join(allowed)})"
            )
    return key


def build_model(name: str, schema: SchemaLike, **hparams: Any) -> nn.Module:
    """Build a registered model; unknown or invalid hyperparameters are a ConfigError."""
    key = check_model_config(name, hparams)
    try:
        return _REGISTRY[key](schema, **hparams)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model ({key}): {exc}") from None
