"""The resume policy: what may become of a run directory, and when a run may be continued.

The rules, decided under the run's lock (:class:`tf4ctr.rundir.RunLock`):

* a finished run is replaced only with ``overwrite``; ``resume`` of a finished run with no
  partial run beside it is refused (nothing to resume);
* a partial (interrupted) run is continued only with ``resume``, removed only with
  ``overwrite``, and otherwise refused, naming how many epochs it saved;
* a resumption must have a complete checkpoint, and every setting of the interrupted run's
  config must be the same now, except :data:`RESUME_FREE_KEYS` (settings that change
  nothing a run computes); data file paths are compared with links resolved, and the
  vocabularies fit on the training split must be the same (the data did not change);
* on failure, a partial run is kept when it can be resumed (a signal after at least one
  checkpoint: :class:`RunInterrupted`) and removed otherwise (no checkpoint yet, or a run
  that diverged, which would diverge again).

Nothing is removed except through :func:`tf4ctr.rundir.remove_run_dir`, which checks the
folder is this run's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from tf4ctr.config import settings_of_its_day
from tf4ctr.errors import ConfigError, UserError, first_message_line
from tf4ctr.fileio import read_yaml
from tf4ctr.rundir import CONFIG_FILE, PREPROCESSOR_FILE, RunPaths, is_run_dir, remove_run_dir
from tf4ctr.train.trainer import TrainingDiverged

log = logging.getLogger("tf4ctr")

#: Keys whose value may differ between an interrupted run and its resumption: they change
#: nothing a run computes (num_threads changes the last digits only, so it is warned about).
RESUME_FREE_KEYS = (
    "train.progress",
    "train.num_threads",
    "train.device",
    "train.memory_map",
    "train.log_to",
    "output_dir",
    "cache_dir",
)


class RunInterrupted(Exception):
    """Training stopped by SIGINT / SIGTERM; the partial run stays, resumable."""

    def __init__(self, name: str, partial: Path | None, epochs_done: int) -> None:
        self.name, self.partial, self.epochs_done = name, partial, epochs_done
        if partial is not None:
            epochs = "epoch 1 is" if epochs_done == 1 else f"epochs 1-{epochs_done} are"
            kept = f"{epochs} kept in {partial}"
        else:
            kept = "no epoch had finished, so nothing was kept"
        super().__init__(f"run {name} stopped during epoch {epochs_done + 1}; {kept}")

    @property
    def resumable(self) -> bool:
        return self.partial is not None


def saved_config(path: Path) -> Any:
    """A run directory's config.yaml as the run used it. It spells out every setting tf4ctr had
    when the run was written; one added since (``train.fold_embeddings``) is filled with what
    such a run did (:func:`tf4ctr.config.settings_of_its_day`), so ``tf4ctr evaluate`` of an
    older run still scores it as its training did."""
    raw = read_yaml(path)
    return settings_of_its_day(raw) if isinstance(raw, dict) else raw


def check_run_dir(
    paths: RunPaths, resolved: dict[str, Any], *, overwrite: bool, resume: bool
) -> None:
    """What may happen to the run directory, decided (and any removal done) under the lock."""
    if paths.final.exists():
        if resume and not paths.partial.exists():
            raise UserError(f"{paths.final}: run {paths.name} is finished; nothing to resume")
        if not overwrite and not resume:
            raise UserError(
                f"{paths.final}: run directory already exists (use --overwrite or another name=...)"
            )
        if not is_run_dir(paths.final, paths.name):
            remove_run_dir(paths.final, paths.name)  # refuses, naming the folder
    if paths.partial.exists():
        if resume:
            check_resumable(paths, resolved)
        elif overwrite:
            remove_run_dir(paths.partial, paths.name)
        else:
            raise UserError(
                f"{paths.partial}: run {paths.name} was interrupted "
                f"({epochs_done(paths)} epoch(s) saved); continue it with --resume, or "
                "start over with --overwrite"
            )
    elif resume:
        raise UserError(
            f"{paths.output_dir}: no interrupted run {paths.name} to resume "
            f"(expected {paths.partial.name})"
        )


def epochs_done(paths: RunPaths) -> int:
    latest = paths.latest_checkpoint()
    return 0 if latest is None else latest[0]


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _real_data_paths(mapping: dict[str, Any]) -> dict[str, Any]:
    """``mapping`` with its data file paths (keys ending in ``_data``) resolved, links
    followed: the same data reached through another path (a link, a moved checkout) is the
    same data."""
    return {
        k: os.path.realpath(v) if k.endswith("_data") and isinstance(v, str) else v
        for k, v in mapping.items()
    }


def check_resumable(paths: RunPaths, resolved: dict[str, Any]) -> None:
    """Refuse to resume when anything that changes results differs from the interrupted run."""
    config_file = paths.partial / CONFIG_FILE
    if paths.latest_checkpoint() is None or not config_file.is_file():
        raise UserError(
            f"{paths.partial}: the interrupted run {paths.name} has no complete epoch to resume "
            "from; start over with --overwrite"
        )
    before = _real_data_paths(_flatten(saved_config(config_file)))
    now = _real_data_paths(_flatten(json.loads(json.dumps(resolved, default=str))))
    for key in sorted(set(before) | set(now)):
        if key in RESUME_FREE_KEYS or before.get(key) == now.get(key):
            continue
        raise ConfigError(
            f"{key}: {before.get(key)!r} in the interrupted run {paths.name}, {now.get(key)!r} "
            "now; resume with the same config, or start over with --overwrite"
        )
    if before.get("train.num_threads") != now.get("train.num_threads"):
        log.warning(
            "train.num_threads differs from the interrupted run: results match an "
            "uninterrupted run to the last digit only at the same thread count"
        )


def read_checkpoint(paths: RunPaths) -> dict[str, Any]:
    latest = paths.latest_checkpoint()
    assert latest is not None  # checked by check_resumable
    try:
        # our own file, written by torch.save; it holds numpy RNG state and Python
        # objects of the fit state, so it is not a plain tensor dict
        return torch.load(latest[1], map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(
            f"{latest[1]}: unreadable checkpoint ({first_message_line(str(exc), 'no message')}); "
            "start over with --overwrite"
        ) from None


def same_preprocessing(paths: RunPaths, state: dict[str, Any]) -> None:
    """Refuse to resume when the vocabularies fit now differ from the interrupted run's."""

    def resolved(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "config": _real_data_paths(state.get("config") or {})}

    saved = json.loads((paths.partial / PREPROCESSOR_FILE).read_text(encoding="utf-8"))
    if resolved(saved) != resolved(json.loads(json.dumps(state))):
        raise UserError(
            f"{paths.partial}: the data files changed since run {paths.name} was interrupted "
            "(its vocabularies differ); start over with --overwrite"
        )


def handle_failure(paths: RunPaths, close_log: Any) -> None:
    """Called from an ``except``: keep a resumable partial run, remove a useless one."""
    exc = sys.exc_info()[1]
    partial = paths.partial
    close_log()
    if isinstance(exc, KeyboardInterrupt):
        # what is on disk, not what this process last noted: the signal may have landed
        # between a checkpoint's rename and the bookkeeping after it
        saved = epochs_done(paths)
        if saved == 0:
            remove_run_dir(partial, paths.name)
            raise RunInterrupted(paths.name, None, 0) from None
        raise RunInterrupted(paths.name, partial, saved) from None
    if isinstance(exc, TrainingDiverged):
        remove_run_dir(partial, paths.name)  # resuming would diverge again: nothing to keep
    elif paths.latest_checkpoint() is None:
        remove_run_dir(partial, paths.name)
