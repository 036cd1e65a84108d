"""What identifies a run's result: a hash of everything that can change it.

A cell's key hashes its parsed config with names, output places and spelled-out defaults
left out, and the dataset by what it is (its config and split file names), not where it
lies: the same study keys alike in any checkout, and a record answers only for the config
that produced it.

"Default" means the value a setting had when keys began to leave it out (:data:`KEYED_AGAINST`),
not today's: when a default changes, a config that relies on the new one gets a new key (no
old record answers for it), while one that spells out the old value keeps its key and its
records.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from tf4ctr.config import (  # the history of defaults lives with the config
    KEYED_AGAINST,
    parse_run_config,
    settings_of_its_day,
    with_settings,
)
from tf4ctr.models import model_defaults
from tf4ctr.models.registry import canonical_name

__all__ = [
    "KEYED_AGAINST",
    "canonical_config",
    "config_key",
    "portable_dataset",
    "record_config",
    "settings_of_its_day",
    "stored_config_key",
]

_NOT_RESULTS = (
    "progress",
    "num_threads",
    "eval_batch_size",
    "memory_map",
    "device",
    "log_to",
)  # train keys that change no result (eval_batch_size: bit for bit at multiples of 4 in our
# probes, as the default is; other sizes can move a logit's last digit — Trainer.cpu_forward_rows)
_MISSING = object()


def _plain(value: Any) -> Any:
    """JSON-normal form, so (400, 400) from a signature equals [400, 400] from YAML."""
    return json.loads(json.dumps(value, default=str))


@functools.lru_cache(maxsize=64)
def _dataset_identity(dataset: str, base: str) -> str:
    """A dataset by what it is, not where it lies: its config without file locations,
    plus each split's file name. The same study keys alike in any checkout."""
    from tf4ctr.data import load_dataset_config

    source: Any = json.loads(dataset) if dataset.startswith("{") else Path(dataset)
    config = load_dataset_config(source, base_dir=Path(base))
    described = config.to_dict()
    for split in ("train", "valid", "test"):
        described[f"{split}_data"] = Path(described[f"{split}_data"]).name
    described.pop("source", None)
    return json.dumps(described, sort_keys=True, default=str)


def canonical_config(raw: dict[str, Any], source: Path | None = None) -> dict[str, Any]:
    """Everything that can change a run's result, with defaults left out: a config that
    spells out a default and one that omits it are the same run."""
    parsed = parse_run_config(raw, source=source)
    model_default = _plain(model_defaults(parsed.model_name))
    model = {
        k: v for k, v in _plain(parsed.model_hparams).items() if model_default.get(k, _MISSING) != v
    }
    loss_default = KEYED_AGAINST["loss"]
    loss = {
        k: v for k, v in _plain(dataclasses.asdict(parsed.loss)).items() if loss_default[k] != v
    }
    train_default = KEYED_AGAINST["train"]
    train = {
        k: v
        for k, v in _plain(dataclasses.asdict(parsed.train)).items()
        if k not in _NOT_RESULTS and train_default[k] != v
    }
    dataset = parsed.dataset
    text = json.dumps(dataset, sort_keys=True) if isinstance(dataset, dict) else str(dataset)
    base = str(source.parent if source is not None else Path.cwd())
    return {
        "model": canonical_name(parsed.model_name),
        "model_hparams": model,
        "loss": loss,
        "train": train,
        "dataset": _dataset_identity(text, base),
    }


def config_key(raw: dict[str, Any], source: Path | None = None) -> str:
    """Hash of :func:`canonical_config`: names, output places and defaults left out."""
    blob = json.dumps(canonical_config(raw, source), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def portable_dataset(dataset: str | Path | dict[str, Any], base: Path) -> dict[str, Any]:
    """A dataset as a result store keeps it: the mapping its key is made of (its config with
    each split's location cut to the file name), not the path of a config file, which
    exists on one machine only. Keys alike: ``portable_dataset(p)`` in place of ``p``."""
    text = json.dumps(dataset, sort_keys=True) if isinstance(dataset, dict) else str(dataset)
    return json.loads(_dataset_identity(text, str(base)))


def record_config(raw: dict[str, Any], source: Path | None = None) -> dict[str, Any]:
    """The config a result store keeps for a run of ``raw``: ``raw`` with every train and loss
    setting whose default changed since keys began (``KEYED_AGAINST``) spelled out at the value
    the run used, so the record reads the same under any later default, and the dataset as
    :func:`portable_dataset`, so it keys alike in any checkout (``source``: the file ``raw``
    came from, for a relative dataset path)."""
    parsed = parse_run_config(raw, source=source)
    used = {"train": dataclasses.asdict(parsed.train), "loss": dataclasses.asdict(parsed.loss)}
    out, sections = with_settings(raw)
    base = source.parent if source is not None else Path.cwd()
    out["dataset"] = portable_dataset(parsed.dataset, base)
    for section, given in sections.items():
        for name, then in KEYED_AGAINST[section].items():
            if name not in given and used[section][name] != then:
                given[name] = used[section][name]
    return out


def stored_config_key(config: dict[str, Any]) -> str:
    """The key of a stored record's config. A setting the record leaves out had the default of
    its day, ``KEYED_AGAINST``: records written since a default changed spell that setting out
    (:func:`record_config`), and those written before ran with the old default, so reading the
    gap as today's default would let an old run answer for a config it never ran."""
    return config_key(settings_of_its_day(config))
