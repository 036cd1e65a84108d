"""Dataset config: FuxiCTR-style YAML checked once and turned into typed, frozen objects.

Everything downstream (reader, preprocessor, cache key) trusts these objects,
so every check a user can fail happens here, with a one-line message that
names the file and the key. Relative data paths are resolved against the
directory of the YAML file (or ``base_dir`` for a dict), never against the
current directory, so a config means the same thing wherever it is run from.
FuxiCTR's ``data_root`` key is accepted and ignored: FuxiCTR uses it as the
place to write its own processed files, which tf4ctr keeps in its cache.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf4ctr.data.buckets import NUMERIC_BUCKETERS, TEXT_PREPROCESSORS
from tf4ctr.data.normalize import NORMALIZERS
from tf4ctr.errors import ConfigError
from tf4ctr.fileio import read_yaml

__all__ = [
    "DATA_FORMATS",
    "FEATURE_DTYPES",
    "FEATURE_TYPES",
    "DatasetConfig",
    "FeatureSpec",
    "LabelSpec",
    "load_dataset_config",
]

FEATURE_TYPES = ("categorical", "numeric", "sequence")
#: how a sequence field's token vectors become one vector (FuxiCTR's names accepted too)
SEQUENCE_POOLING = {
    "sum": "sum",
    "mean": "mean",
    "MaskedSumPooling": "sum",
    "MaskedAveragePooling": "mean",
}
FEATURE_DTYPES = ("str", "int", "float")
LABEL_DTYPES = ("float", "int")
DATA_FORMATS = ("auto", "csv", "parquet", "criteo_tsv")
#: What becomes of ±inf and numbers beyond float32's range in a number-fed column:
#: an error naming file, line and column (default), an empty cell, or the nearest float32.
NON_FINITE = ("error", "missing", "clip")
SPLITS = ("train", "valid", "test")

_TOP_KEYS = (
    "name",
    "non_finite",
    "dataset_id",
    "data_root",
    "data_format",
    "train_data",
    "valid_data",
    "test_data",
    "min_categr_count",
    "feature_cols",
    "label_col",
    "group_col",
    "group_id",
)
_FEATURE_KEYS = (
    "name", "type", "dtype", "active", "preprocess", "min_categr_count", "fill_na",
    "splitter", "max_len", "encoder", "normalizer",
)  # fmt: skip
_LABEL_KEYS = ("name", "dtype")
# Dataset names become cache directory names.
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class FeatureSpec:
    """One input column and how it becomes a model field.

    ``dtype`` says how the raw column is read: a categorical field without
    ``preprocess`` is always keyed by its raw text (so ``dtype`` is informative
    there), while ``numeric`` fields and fields with a ``preprocess`` bucketer
    are read as numbers. ``fill_na`` is already normalised: a string for
    text-keyed categorical fields, a float for number-fed ones.
    """

    name: str
    type: str
    dtype: str = "str"
    preprocess: str | None = None
    min_categr_count: int | None = None
    fill_na: str | float | None = None
    #: sequence fields only: token separator, tokens kept (the first ones), pooling
    splitter: str | None = None
    max_len: int | None = None
    pooling: str | None = None
    #: numeric fields only: FuxiCTR's scaler fitted on train (tf4ctr.data.normalize)
    normalizer: str | None = None

    @property
    def is_categorical(self) -> bool:
        """True for every field with a vocabulary (categorical and sequence)."""
        return self.type in ("categorical", "sequence")

    @property
    def is_sequence(self) -> bool:
        return self.type == "sequence"

    @property
    def reads_numbers(self) -> bool:
        """True when the raw column is parsed as numbers (numeric, or bucketed)."""
        return self.type == "numeric" or (
            self.preprocess is not None and self.preprocess not in TEXT_PREPROCESSORS
        )

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "preprocess": self.preprocess,
            "min_categr_count": self.min_categr_count,
            "fill_na": self.fill_na,
        }
        if self.is_sequence:  # keep old configs' hashes (and caches) unchanged
            d.update(splitter=self.splitter, max_len=self.max_len, encoder=self.pooling)
        if self.normalizer is not None:  # the same, for fields without one
            d["normalizer"] = self.normalizer
        return d


@dataclass(frozen=True)
class LabelSpec:
    """The 0/1 click column."""

    name: str
    dtype: str = "float"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@dataclass(frozen=True)
class DatasetConfig:
    """A validated dataset config; paths are absolute."""

    name: str
    train_data: Path
    valid_data: Path
    test_data: Path
    feature_cols: tuple[FeatureSpec, ...]
    label_col: LabelSpec
    group_col: str | None = None
    min_categr_count: int = 1
    data_format: str = "auto"
    source: Path | None = None
    #: see :data:`NON_FINITE`
    non_finite: str = "error"

    @property
    def paths(self) -> dict[str, Path]:
        """The three split files by split name, in train/valid/test order."""
        return {"train": self.train_data, "valid": self.valid_data, "test": self.test_data}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.feature_cols)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form: the cache key hashes it and run dirs store it.

        ``source`` is left out on purpose: the same settings loaded from two
        copies of a YAML file must hash the same. The result loads back with
        :func:`load_dataset_config`.
        """
        return {
            "name": self.name,
            "data_format": self.data_format,
            "train_data": str(self.train_data),
            "valid_data": str(self.valid_data),
            "test_data": str(self.test_data),
            "min_categr_count": self.min_categr_count,
            "feature_cols": [f.to_dict() for f in self.feature_cols],
            "label_col": self.label_col.to_dict(),
            "group_col": self.group_col,
            # only when set: configs without it keep their hashes (and caches)
            **({"non_finite": self.non_finite} if self.non_finite != "error" else {}),
        }


class _Where:
    """Builds the one-line ConfigError messages: ``<file>: <key path>: <problem>``."""

    def __init__(self, origin: str, prefix: str = "") -> None:
        self.origin = origin
        self.prefix = prefix

    def key(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {message}")

    def bad_value(self, path: str, expected: str, value: Any) -> ConfigError:
        return self.error(f"key '{self.key(path)}': expected {expected}, found {_short(value)}")

    def check_keys(self, mapping: Mapping[Any, Any], allowed: tuple[str, ...], path: str) -> None:
        for k in mapping:
            if k not in allowed:
                full = self.key(f"{path}.{k}" if path else str(k))
                raise self.error(f"unknown key '{full}' (expected one of: {', '.join(allowed)})")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_dataset_config(
    src: str | Path | Mapping[str, Any], base_dir: Path | None = None
) -> DatasetConfig:
    """Load and validate a dataset config from a YAML file or an already parsed mapping.

    Accepts the config mapping itself or FuxiCTR's form, where one top-level
    key (the dataset id, which becomes ``name``) holds it. Relative data paths
    are resolved against the YAML file's directory; for a mapping, against
    ``base_dir`` (default: the current directory). Raises :class:`ConfigError`
    for anything wrong, naming the file and key.
    """
    if isinstance(src, Mapping):
        origin = "dataset config"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        raw: Any = src
        yaml_path: Path | None = None
    else:
        yaml_path = Path(src)
        origin = str(yaml_path)
        raw = read_yaml(yaml_path, expected="a dataset config mapping")
        base = Path(base_dir) if base_dir is not None else yaml_path.parent
    return _parse(raw, _Where(origin), Path(os.path.abspath(base)), yaml_path)


def settings_of(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """A dataset config's settings and, in FuxiCTR's form ``{dataset_id: {settings}}``, its id."""
    if len(raw) == 1 and not any(k in _TOP_KEYS for k in raw):
        ((key, value),) = raw.items()
        if isinstance(value, Mapping):
            return value, str(key)
    return raw, None


def _parse(raw: Any, where: _Where, base: Path, yaml_path: Path | None) -> DatasetConfig:
    if not isinstance(raw, Mapping):
        raise where.error(f"expected a mapping of dataset settings, found {type(raw).__name__}")
    raw, dataset_id = settings_of(raw)
    if dataset_id is not None:
        where = _Where(where.origin, prefix=f"{dataset_id}.")
    elif (
        not any(k in _TOP_KEYS for k in raw)
        and raw
        and all(isinstance(v, Mapping) for v in raw.values())
    ):
        ids = ", ".join(str(k) for k in raw)
        raise where.error(f"holds {len(raw)} datasets ({ids}); expected exactly one")
    where.check_keys(raw, _TOP_KEYS, "")

    name = _parse_name(raw, where, dataset_id, yaml_path)
    data_format = _get(raw, "data_format", default="auto")
    if data_format not in DATA_FORMATS:
        raise where.bad_value("data_format", f"one of {', '.join(DATA_FORMATS)}", data_format)
    paths = {}
    for split in SPLITS:
        value = _require(raw, f"{split}_data", where)
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise where.bad_value(f"{split}_data", "a file path", value)
        paths[split] = _resolve(value, base)
    non_finite = _get(raw, "non_finite", default="error")
    if non_finite not in NON_FINITE:
        raise where.bad_value("non_finite", f"one of {', '.join(NON_FINITE)}", non_finite)
    min_count = _parse_count(_get(raw, "min_categr_count", default=1), "min_categr_count", where)
    assert min_count is not None
    features = _parse_features(_require(raw, "feature_cols", where), where)
    label = _parse_label(_require(raw, "label_col", where), where)
    if label.name in {f.name for f in features}:
        raise where.error(f"key '{where.key('label_col.name')}': '{label.name}' is also a feature")
    group_col = _parse_group(raw, where, label)
    return DatasetConfig(
        name=name,
        train_data=paths["train"],
        valid_data=paths["valid"],
        test_data=paths["test"],
        feature_cols=tuple(features),
        label_col=label,
        group_col=group_col,
        min_categr_count=min_count,
        data_format=data_format,
        source=Path(os.path.abspath(yaml_path)) if yaml_path is not None else None,
        non_finite=non_finite,
    )


def _get(raw: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = raw.get(key)
    return default if value is None else value


def _require(raw: Mapping[str, Any], key: str, where: _Where) -> Any:
    if raw.get(key) is None:
        raise where.error(f"missing required key '{where.key(key)}'")
    return raw[key]


def _resolve(value: str | os.PathLike[str], base: Path) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    return Path(os.path.normpath(path))


def _parse_name(
    raw: Mapping[str, Any], where: _Where, dataset_id: str | None, yaml_path: Path | None
) -> str:
    if raw.get("name") is not None and raw.get("dataset_id") is not None:
        raise where.error("keys 'name' and 'dataset_id' both set; keep one")
    key = "name" if raw.get("name") is not None else "dataset_id"
    name = raw.get(key)
    if name is None:
        name = dataset_id if dataset_id is not None else (yaml_path.stem if yaml_path else None)
    if name is None:
        raise where.error("missing required key 'name' (the dataset name)")
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise where.bad_value(
            key,
            "a dataset name of letters, digits, '_', '.', '-' (it names the cache directory)",
            name,
        )
    return name


def _parse_count(value: Any, path: str, where: _Where) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; `min_categr_count: true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.bad_value(path, "an integer >= 1", value)
    return value


def _check_feature_name(name: Any, path: str, where: _Where) -> str:
    # Feature names become .npy file names in the cache; '__' is reserved for
    # the label and group arrays stored beside them.
    if (
        not isinstance(name, str)
        or not name
        or name.startswith("__")
        or name in {".", ".."}
        or any(c in name for c in "/\\\0")
    ):
        raise where.bad_value(
            path, "a column name (non-empty, no '/' or '\\', not starting with '__')", name
        )
    return name


def _parse_features(value: Any, where: _Where) -> list[FeatureSpec]:
    if not isinstance(value, list) or not value:
        raise where.bad_value("feature_cols", "a non-empty list of feature mappings", value)
    features: list[FeatureSpec] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(value):
        path = f"feature_cols[{i}]"
        if not isinstance(entry, Mapping):
            raise where.bad_value(path, "a mapping with at least 'name' and 'type'", entry)
        where.check_keys(entry, _FEATURE_KEYS, path)
        active = entry.get("active", True)
        if not isinstance(active, bool):
            raise where.bad_value(f"{path}.active", "true or false", active)
        names_raw = _require(entry, "name", _Where(where.origin, where.key(f"{path}.")))
        if isinstance(names_raw, list):
            if not names_raw:
                raise where.bad_value(
                    f"{path}.name", "a column name or a non-empty list of them", names_raw
                )
            names = [
                _check_feature_name(n, f"{path}.name[{j}]", where) for j, n in enumerate(names_raw)
            ]
        else:
            names = [_check_feature_name(names_raw, f"{path}.name", where)]
        spec_kwargs = _parse_feature_settings(entry, path, where)
        for name in names:
            if name in seen:
                raise where.error(
                    f"key '{where.key(path + '.name')}': feature '{name}' is already defined in {seen[name]}"
                )
            seen[name] = where.key(path)
            if active:
                features.append(FeatureSpec(name=name, **spec_kwargs))
    if not features:
        raise where.error(
            f"key '{where.key('feature_cols')}': every feature is inactive (expected at least one active)"
        )
    return features


def _parse_feature_settings(entry: Mapping[str, Any], path: str, where: _Where) -> dict[str, Any]:
    ftype = entry.get("type")
    if ftype is None:
        raise where.error(f"missing required key '{where.key(path + '.type')}'")
    if ftype not in FEATURE_TYPES:
        raise where.bad_value(f"{path}.type", f"one of {', '.join(FEATURE_TYPES)}", ftype)
    dtype = entry.get("dtype")
    if dtype is None:
        dtype = "float" if ftype == "numeric" else "str"
    if dtype not in FEATURE_DTYPES:
        raise where.bad_value(f"{path}.dtype", f"one of {', '.join(FEATURE_DTYPES)}", dtype)
    preprocess = entry.get("preprocess")
    known = sorted([*NUMERIC_BUCKETERS, *TEXT_PREPROCESSORS])
    if preprocess is not None and preprocess in TEXT_PREPROCESSORS:
        if ftype != "categorical":
            raise where.error(
                f"key '{where.key(path + '.preprocess')}': '{preprocess}' makes a categorical "
                f"field; set type: categorical (found type: {ftype})"
            )
    elif preprocess is not None:
        if not isinstance(preprocess, str) or preprocess not in NUMERIC_BUCKETERS:
            raise where.bad_value(f"{path}.preprocess", f"one of {', '.join(known)}", preprocess)
        if ftype != "categorical":
            raise where.error(
                f"key '{where.key(path + '.preprocess')}': a bucketer makes a categorical field; "
                f"set type: categorical (found type: {ftype})"
            )
        if dtype == "str":
            raise where.error(
                f"key '{where.key(path + '.dtype')}': preprocess '{preprocess}' reads numbers; "
                "expected dtype int or float, found 'str'"
            )
    sequence = _parse_sequence_settings(entry, ftype, path, where)
    min_count = _parse_count(entry.get("min_categr_count"), f"{path}.min_categr_count", where)
    if min_count is not None and ftype == "numeric":
        raise where.error(
            f"key '{where.key(path + '.min_categr_count')}': only categorical features have a vocabulary"
        )
    reads_numbers = ftype == "numeric" or (
        preprocess is not None and preprocess not in TEXT_PREPROCESSORS
    )
    fill_na = _parse_fill_na(entry.get("fill_na"), reads_numbers, f"{path}.fill_na", where)
    normalizer = entry.get("normalizer")
    if normalizer is not None:
        if ftype != "numeric":
            raise where.error(
                f"key '{where.key(path + '.normalizer')}': only numeric features are scaled "
                f"(found type: {ftype})"
            )
        if normalizer not in NORMALIZERS:
            raise where.bad_value(
                f"{path}.normalizer", f"one of {', '.join(NORMALIZERS)}", normalizer
            )
    return {
        "normalizer": normalizer,
        "type": ftype,
        "dtype": dtype,
        "preprocess": preprocess,
        "min_categr_count": min_count,
        "fill_na": fill_na,
        **sequence,
    }


def _parse_sequence_settings(
    entry: Mapping[str, Any], ftype: str, path: str, where: _Where
) -> dict[str, Any]:
    """splitter / max_len / encoder of a sequence field (FuxiCTR's keys); refused elsewhere."""
    keys = [k for k in ("splitter", "max_len", "encoder") if k in entry]
    if ftype != "sequence":
        if keys:
            raise where.error(
                f"key '{where.key(path + '.' + keys[0])}': only sequence features take it "
                f"(found type: {ftype})"
            )
        return {}
    splitter = entry.get("splitter", "|")
    if not isinstance(splitter, str) or not splitter:
        raise where.bad_value(f"{path}.splitter", "a non-empty string", splitter)
    max_len = entry.get("max_len")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise where.bad_value(
            f"{path}.max_len", "a positive integer (tokens kept per row)", max_len
        )
    encoder = entry.get("encoder", "MaskedSumPooling")
    if encoder not in SEQUENCE_POOLING:
        raise where.bad_value(f"{path}.encoder", f"one of {', '.join(SEQUENCE_POOLING)}", encoder)
    return {"splitter": splitter, "max_len": max_len, "pooling": SEQUENCE_POOLING[encoder]}


def _parse_fill_na(value: Any, reads_numbers: bool, path: str, where: _Where) -> str | float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise where.bad_value(path, "a number or a string", value)
    if reads_numbers:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
        raise where.bad_value(path, "a finite number (this column is read as numbers)", value)
    # Text-keyed field: the fill value must look like the raw text it stands
    # for, so 0 and 0.0 both mean the token "0".
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise where.bad_value(path, "a string or a number", value)


def _parse_label(value: Any, where: _Where) -> LabelSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise where.bad_value("label_col", "a mapping like {name: label, dtype: float}", value)
    where.check_keys(value, _LABEL_KEYS, "label_col")
    name = value.get("name")
    if name is None:
        raise where.error(f"missing required key '{where.key('label_col.name')}'")
    if isinstance(name, list):
        raise where.bad_value(
            "label_col.name", "one column name (multi-task labels are not supported)", name
        )
    name = _check_feature_name(name, "label_col.name", where)
    dtype = value.get("dtype") or "float"
    if dtype not in LABEL_DTYPES:
        raise where.bad_value("label_col.dtype", f"one of {', '.join(LABEL_DTYPES)}", dtype)
    return LabelSpec(name=name, dtype=dtype)


def _parse_group(raw: Mapping[str, Any], where: _Where, label: LabelSpec) -> str | None:
    if raw.get("group_col") is not None and raw.get("group_id") is not None:
        raise where.error(
            "keys 'group_col' and 'group_id' both set; keep one (group_id is an alias)"
        )
    key = "group_col" if raw.get("group_col") is not None else "group_id"
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise where.bad_value(key, "one column name", value)
    if value == label.name:
        raise where.error(f"key '{where.key(key)}': the label column cannot be the group column")
    return value
