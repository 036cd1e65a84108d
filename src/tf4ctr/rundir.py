"""Run directories that cannot hurt anything else.

A run called NAME lives in ``<output_dir>/NAME``. While it trains, it is built in the sibling
``<output_dir>/.NAME.partial`` (checkpoint after every epoch, so an interrupted run can be
resumed) and renamed into place when training ends. One OS lock file per run,
``<output_dir>/.NAME.lock``, admits one writer at a time; the OS releases it when the process
dies, so a crash never leaves a stale lock.

The rules that keep a config or a command line from touching anything else:

* a run name is one path component: letters, digits, ``_``, ``-`` and ``.``, not starting with
  a dot (so never ``.`` or ``..``), and the resolved run directory lies inside ``output_dir``;
* nothing is removed unless it is a directory (not a link) that tf4ctr marked as a run of
  that very name (the marker file :data:`MARKER`), or a run of an older tf4ctr that holds
  nothing but the files a run writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf4ctr.errors import UserError
from tf4ctr.fileio import make_dir, try_lock

__all__ = [
    "MARKER",
    "RunLock",
    "RunPaths",
    "RunStatus",
    "check_run_name",
    "list_runs",
    "mark_run_dir",
    "remove_run_dir",
]

#: The file that marks a directory as a tf4ctr run (finished or partial).
MARKER = ".tf4ctr-run"
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
CHECKPOINT_STEM = "checkpoint-epoch"
#: The files of a run directory, named here once (run/, api.py and the legacy check read them).
CONFIG_FILE = "config.yaml"
PREPROCESSOR_FILE = "preprocessor.json"
#: ONNX metadata key of an export with quantised weights (tf4ctr export --quantize); absent: float32
WEIGHTS_KEY = "tf4ctr.weights"
MODEL_FILE = "model.pt"
#: the optimizers' state at the best epoch, beside its weights (train.init_optimizer reads it)
OPTIMIZER_FILE = "optimizer.pt"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
RUN_FILES = (CONFIG_FILE, PREPROCESSOR_FILE, MODEL_FILE, METRICS_FILE, LOG_FILE)
# One folder name that does not start with a dot (so never "." or ".."): it cannot climb out
# of output_dir or hide as a dot-file. Config parsing checks run names with it too.
_NAME_CHARS = r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*"
_NAME = re.compile(_NAME_CHARS)
# What a run of tf4ctr before the marker (0.1) could hold; such a directory is recognised
# as a run by its contents alone.
_LEGACY_PARTIAL = re.compile(rf"\.({_NAME_CHARS})\.partial-(\d+)")
_LEGACY_FILES = frozenset(RUN_FILES)


class RunLockedError(UserError):
    """Another live process is writing this run."""


def is_run_name(name: object) -> bool:
    """Whether ``name`` is one safe folder name for a run."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_run_name(name: str, origin: str = "name") -> str:
    """A run name is one safe path component; ``origin`` says where the value came from."""
    if not is_run_name(name):
        raise UserError(
            f"{origin}: run name must be one folder name of letters, digits, '_', '-' or '.', "
            f"not starting with '.', got {name!r}"
        )
    return name


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files live; ``output_dir`` is absolute and resolved."""

    output_dir: Path
    name: str

    @classmethod
    def create(cls, output_dir: str | Path, name: str, *, origin: str = "name") -> RunPaths:
        check_run_name(name, origin)
        out = Path(output_dir).expanduser().resolve()
        paths = cls(out, name)
        # One path component cannot escape, but a link named like the run could.
        for p in (paths.final, paths.partial):
            if p.is_symlink():
                raise UserError(f"{p}: is a symbolic link, not a tf4ctr run directory")
        if paths.final.resolve().parent != out:
            raise UserError(f"{paths.final}: resolves outside {out}")
        return paths

    @classmethod
    def for_run_dir(cls, run_dir: str | Path, *, origin: str = "--run-dir") -> RunPaths:
        path = Path(run_dir).expanduser()
        if path.name in ("", ".", ".."):
            raise UserError(f"{origin}: {run_dir!s} does not name a run folder")
        return cls.create(path.parent, path.name, origin=origin)

    @property
    def final(self) -> Path:
        return self.output_dir / self.name

    @property
    def partial(self) -> Path:
        return self.output_dir / f".{self.name}{PARTIAL_SUFFIX}"

    @property
    def lock(self) -> Path:
        return self.output_dir / f".{self.name}{LOCK_SUFFIX}"

    def checkpoint_for(self, epoch: int) -> Path:
        """The checkpoint written after ``epoch``: the name tells the epoch without loading."""
        return self.partial / f"{CHECKPOINT_STEM}{epoch}.pt"

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(epoch, path) of the newest complete checkpoint (written by rename: never torn)."""
        return _latest_checkpoint(self.partial)

    def checkpoints(self, directory: Path | None = None) -> list[Path]:
        """Every checkpoint file in ``directory`` (the partial run by default)."""
        return sorted((directory or self.partial).glob(f"{CHECKPOINT_STEM}*.pt"))

    def remove_older_checkpoints(self, epoch: int) -> None:
        for p in self.partial.glob(f"{CHECKPOINT_STEM}*.pt"):
            e = _checkpoint_epoch(p)
            if e is not None and e < epoch:
                p.unlink(missing_ok=True)


def _checkpoint_epoch(path: Path) -> int | None:
    digits = path.name[len(CHECKPOINT_STEM) : -len(".pt")]
    return int(digits) if digits.isdigit() else None


def _latest_checkpoint(partial: Path) -> tuple[int, Path] | None:
    found = [(_checkpoint_epoch(p), p) for p in partial.glob(f"{CHECKPOINT_STEM}*.pt")]
    found = [(e, p) for e, p in found if e is not None]
    return max(found) if found else None


def mark_run_dir(directory: Path, name: str) -> None:
    """Write the marker that lets tf4ctr remove ``directory`` later."""
    payload = {"tf4ctr_run": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (directory / MARKER).write_text(json.dumps(payload) + "\n", encoding="utf-8")


def _marked_as(directory: Path) -> str | None:
    try:
        payload = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload.get("tf4ctr_run") if isinstance(payload, dict) else None


def is_run_dir(directory: Path, name: str) -> bool:
    """True when ``directory`` is a real folder that tf4ctr wrote as run ``name``."""
    if directory.is_symlink() or not directory.is_dir():
        return False
    if _marked_as(directory) == name:
        return True
    entries = list(directory.iterdir())
    return bool(entries) and all(
        p.name in _LEGACY_FILES and p.is_file() and not p.is_symlink() for p in entries
    )


def remove_run_dir(directory: Path, name: str) -> None:
    """Remove a run directory, after checking that it is one (refuses anything else)."""
    if not directory.exists() and not directory.is_symlink():
        return
    if not is_run_dir(directory, name):
        raise UserError(
            f"{directory}: not a tf4ctr run directory (no {MARKER} marker for run {name!r}); "
            "refusing to remove it: move it away or choose another name"
        )
    shutil.rmtree(directory)


class RunLock:
    """An exclusive, non-blocking OS lock on ``.NAME.lock`` for one run.

    The lock file holds the writer's PID for the error message. Released by
    :meth:`release` or by the OS when the process ends (even by SIGKILL).
    """

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._fd: int | None = None
        self._made_output_dir = False

    def acquire(self) -> RunLock:
        path = self.paths.lock
        while True:
            if not self.paths.output_dir.is_dir():
                make_dir(self.paths.output_dir, "output_dir")
                self._made_output_dir = True
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # another process removed the empty folder just now
                continue
            if not try_lock(fd):
                os.close(fd)
                raise RunLockedError(
                    f"run {self.paths.name} is being written by process {_lock_owner(path)} "
                    f"(lock {path})"
                ) from None
            # The holder we waited on may have unlinked the file before we locked it: then
            # our lock guards a file nobody else will open. Lock the current file instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink while still holding the lock, so no one locks a file about to vanish.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.paths.lock)
        os.close(self._fd)
        self._fd = None
        if self._made_output_dir:
            # leave no empty folder behind after a run that wrote nothing (an error)
            with contextlib.suppress(OSError):
                self.paths.output_dir.rmdir()  # fails, as it should, unless empty

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _lock_owner(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "?"
    except OSError:
        return "?"


def is_locked(paths: RunPaths) -> bool:
    """True while a live process holds the run's lock."""
    try:
        with RunLock(paths):
            return False
    except RunLockedError:
        return True


@dataclass(frozen=True)
class RunStatus:
    """One entry of ``tf4ctr runs list``."""

    name: str
    #: finished | partial (resumable, writer gone) | writing (a live process holds the lock)
    #: | stale (a dead tf4ctr 0.1 build folder, not resumable)
    state: str
    path: Path
    epochs_done: int | None = None
    writer_pid: str | None = None


def _epochs_in(partial: Path) -> int:
    latest = _latest_checkpoint(partial)
    return 0 if latest is None else latest[0]


def list_runs(output_dir: str | Path) -> Iterator[RunStatus]:
    """Finished runs, interrupted (partial) runs and runs being written, by name."""
    out = Path(output_dir).expanduser().resolve()
    if not out.is_dir():
        return
    for entry in sorted(out.iterdir()):
        if entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX):
            name = entry.name[1 : -len(PARTIAL_SUFFIX)]
            if not _NAME.fullmatch(name) or not is_run_dir(entry, name):
                continue
            paths = RunPaths(out, name)
            if is_locked(paths):
                yield RunStatus(name, "writing", entry, _epochs_in(entry), _lock_owner(paths.lock))
            else:
                yield RunStatus(name, "partial", entry, _epochs_in(entry))
        elif (legacy := _LEGACY_PARTIAL.fullmatch(entry.name)) is not None:
            # tf4ctr 0.1 built runs in .NAME.partial-PID and left them behind when killed
            name, pid = legacy.group(1), int(legacy.group(2))
            if is_run_dir(entry, name) and not _pid_alive(pid):
                yield RunStatus(name, "stale", entry, _epochs_in(entry))
        elif not entry.name.startswith(".") and is_run_dir(entry, entry.name):
            yield RunStatus(entry.name, "finished", entry)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_partial_runs(output_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Remove interrupted runs whose writer is gone (all, or those named); returns what went."""
    removed = []
    for status in list(list_runs(output_dir)):
        if status.state not in ("partial", "stale") or (names and status.name not in names):
            continue
        if status.state == "stale":
            remove_run_dir(status.path, status.name)
            removed.append(status.path)
            continue
        paths = RunPaths(Path(output_dir).expanduser().resolve(), status.name)
        try:
            with RunLock(paths):
                remove_run_dir(paths.partial, status.name)
        except RunLockedError:
            continue  # a writer started meanwhile: not ours to remove
        removed.append(status.path)
    return removed
