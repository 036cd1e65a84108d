"""The result store: one JSON line per finished cell, appended as soon as it finishes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf4ctr.errors import UserError
from tf4ctr.experiments.keys import stored_config_key
from tf4ctr.fileio import make_dir
from tf4ctr.train.trainer import seconds_per_epoch

__all__ = ["ResultStore", "summarize_run"]


def _record_key(record: dict[str, Any]) -> str:
    """A stored record's key, recomputed from its config (older stores hashed the raw
    config, location included), a setting it leaves out read at the default of its day
    (keys.stored_config_key); the stored key when the config cannot be read here."""
    config = record.get("config")
    if isinstance(config, dict):
        try:
            return stored_config_key(config)
        except (UserError, KeyError, TypeError, ValueError):
            pass
    return str(record["key"])


def _current_format(record: dict[str, Any]) -> dict[str, Any]:
    """A record in today's format. Stores written before the store kept metrics.json's
    epoch records named the epoch's training loss ``train_loss``."""
    for epoch in record.get("history") or ():
        if "train_loss" in epoch:
            epoch["train_total_loss"] = epoch.pop("train_loss")
    return record


@dataclass
class ResultStore:
    """Append-only JSON lines, one finished cell per line.

    A line is written whole with one ``write`` and flushed to disk; a torn last
    line (the process killed mid-write) fails to parse and is ignored, so the
    cell simply runs again.
    """

    path: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Read the file again: another process (one grid per core) may have added records."""
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "key" in rec:
                    self.records[_record_key(rec)] = _current_format(rec)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, record: dict[str, Any]) -> None:
        make_dir(self.path.parent, "the experiment's store")
        line = json.dumps(record, default=str) + "\n"
        with self.path.open("a+b") as fh:
            # a torn last line must not swallow this record
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.records[_record_key(record)] = record


def summarize_run(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's metrics.json that reports need."""
    epochs = metrics["epochs"]
    train_seconds = [e["train_seconds"] for e in epochs]
    summary = {
        "valid": metrics["valid"],
        "test": metrics["test"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": len(epochs),
        "first_epoch_seconds": train_seconds[0] if train_seconds else None,
        "seconds_per_epoch": seconds_per_epoch(epochs),
        "test_seconds": metrics["test"].get("seconds"),
        "parameters": metrics["parameters"],
        "valid_seconds": metrics["valid"].get("seconds"),
        # the same epoch records as metrics.json, key for key; only the first epoch's
        # gradient-norm trace (a long list) is kept once, beside them
        "history": [{k: v for k, v in e.items() if k != "logit_grad_norms"} for e in epochs],
    }
    if epochs and "logit_grad_norms" in epochs[0]:
        summary["logit_grad_norms"] = epochs[0]["logit_grad_norms"]
    return summary
