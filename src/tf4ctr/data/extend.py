"""Which datasets may extend a parent run's preprocessing (continual training, ``init_from``).

A warm start keeps every known category at its index and its learned row, so the new data must
be read the way the parent's was: the same fields in the same order, each of the same type and
encoding, the same label and group columns. ``min_categr_count`` may differ: it decides only
which new values join the vocabulary.
"""

from __future__ import annotations

from typing import Any

from tf4ctr.data.schema import DatasetConfig, FeatureSpec
from tf4ctr.errors import ConfigError


def check_extends(parent: DatasetConfig, child: DatasetConfig) -> None:
    """A ConfigError naming the first field whose reading differs between a parent run's
    dataset and a dataset meant to extend it (added, removed, another type or encoding);
    ``min_categr_count`` may differ (it applies to the new values only)."""

    def reading(feature: FeatureSpec) -> dict[str, Any]:
        d = feature.to_dict()
        d.pop("min_categr_count")
        return d

    theirs = {f.name: reading(f) for f in parent.feature_cols}
    ours = {f.name: reading(f) for f in child.feature_cols}
    for name in ours.keys() - theirs.keys():
        raise ConfigError(f"init_from: field '{name}' is not in the parent run's dataset")
    for name in theirs.keys() - ours.keys():
        raise ConfigError(f"init_from: field '{name}' of the parent run's dataset is missing")
    if list(ours) != list(theirs):
        raise ConfigError(
            f"init_from: the fields are in another order than the parent run's ({', '.join(theirs)})"
        )
    for name, spec in ours.items():
        for key, value in spec.items():
            if theirs[name].get(key) != value:
                raise ConfigError(
                    f"init_from: field '{name}': {key} is {value!r} here, "
                    f"{theirs[name].get(key)!r} in the parent run"
                )
    if parent.group_col != child.group_col or parent.label_col != child.label_col:
        raise ConfigError("init_from: the label or group column differs from the parent run's")
