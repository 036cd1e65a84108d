"""Numeric fields scaled as FuxiCTR's ``normalizer`` key does, fitted on the train split only.

A numeric field enters the model as its value times a learned vector, beside categorical
embeddings drawn around 1e-4: a raw column that runs to millions (census income's ``fnlwgt``)
swamps every other field. ``normalizer: StandardScaler`` maps x to (x − mean) / std and
``MinMaxScaler`` to (x − min) / (max − min), both with the statistics of the train split after
``fill_na`` (missing values are filled first, as FuxiCTR fills them), both with scale 1 where the
column is constant (as scikit-learn does). The statistics are merged over the pieces of a
streamed file (Chan's pairwise update), so they equal a one-pass fit of the whole column, and
they are stored with the vocabularies, so predict, the ONNX RowEncoder and the server apply the
same affine map.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tf4ctr.errors import ConfigError

if TYPE_CHECKING:  # schema imports this module's NORMALIZERS
    from tf4ctr.data.schema import FeatureSpec

log = logging.getLogger("tf4ctr")

#: FuxiCTR's names for the two scalers
NORMALIZERS = ("StandardScaler", "MinMaxScaler")
#: a raw numeric field beyond this magnitude is warned about: embeddings start around 1e-4
RAW_SCALE_WARNING = 100.0


@dataclass
class ColumnStats:
    """Count, mean, sum of squared deviations, min and max of a column, merged piece by piece."""

    count: int = 0
    mean: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        n = int(values.size)
        if n == 0:
            return
        values = values.astype(np.float64, copy=False)
        mean = float(values.mean())
        squares = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.squares += squares + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def scaler(self, normalizer: str) -> tuple[float, float]:
        """(shift, scale) of ``normalizer``: the field becomes (x − shift) / scale."""
        if normalizer == "StandardScaler":
            std = math.sqrt(self.squares / self.count) if self.count else 0.0
            return self.mean if self.count else 0.0, std if std > 0 else 1.0
        if normalizer == "MinMaxScaler":
            if not self.count:
                return 0.0, 1.0
            span = self.high - self.low
            return self.low, span if span > 0 else 1.0
        raise ValueError(f"unknown normalizer {normalizer!r} (expected one of {NORMALIZERS})")

    @property
    def magnitude(self) -> float:
        return max(abs(self.low), abs(self.high)) if self.count else 0.0


def scale(values: np.ndarray, scaler: tuple[float, float] | None) -> np.ndarray:
    """``values`` (float64, filled) through ``scaler`` as float32; unchanged without one."""
    if scaler is None:
        return values.astype(np.float32)
    shift, spread = scaler
    return ((values - shift) / spread).astype(np.float32)


def warn_raw_scale(name: str, stats: ColumnStats, where: str) -> None:
    """One warning for a raw numeric field large enough to swamp the embeddings."""
    if stats.magnitude > RAW_SCALE_WARNING:
        log.warning(
            "warning: %sfield '%s': raw values reach %.4g and enter the model unscaled "
            "(embeddings start near 1e-4); set normalizer: StandardScaler (or MinMaxScaler) "
            "on it",
            where,
            name,
            stats.magnitude,
        )


def read_scalers(raw: Any, numeric: Sequence[FeatureSpec]) -> dict[str, tuple[float, float]]:
    """The stored (shift, scale) of every numeric field that has a normalizer."""
    scalers = {}
    for feature in numeric:
        if feature.normalizer is None:
            continue
        entry = raw.get(feature.name) if isinstance(raw, dict) else None
        try:
            shift, spread = float(entry["shift"]), float(entry["scale"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise ConfigError(
                f"preprocessor state: key 'scalers.{feature.name}': expected {{shift, scale}} "
                f"numbers for its {feature.normalizer}"
            ) from None
        if not (np.isfinite(shift) and np.isfinite(spread) and spread > 0):
            raise ConfigError(
                f"preprocessor state: key 'scalers.{feature.name}': scale must be finite and > 0"
            )
        scalers[feature.name] = (shift, spread)
    return scalers
