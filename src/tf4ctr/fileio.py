"""How tf4ctr touches files it does not stream: an atomic write, a YAML read, an OS lock.

Every file tf4ctr writes for later use (run files, checkpoints, reports, figures, scores)
is written to a hidden temporary sibling and renamed into place, so a crash or a signal
never leaves a torn file under the real name, and the temporary one is removed whatever
happens. Every YAML file is read through :func:`read_yaml`, so a missing file or a syntax
error is one line naming the file (and line).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tf4ctr.errors import ConfigError, UserError

__all__ = [
    "atomic_torch_save",
    "make_dir",
    "read_yaml",
    "try_lock",
    "write_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def make_dir(path: str | Path, what: str) -> Path:
    """``path`` as a folder (made with its parents where missing); ``what`` names the setting
    it came from in the one-line error when a file stands where a folder must be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{what}: {path} is a file, expected a folder") from None
    except NotADirectoryError:
        file = next((p for p in path.parents if p.exists() and not p.is_dir()), path)
        raise UserError(f"{what}: {path}: {file} is a file, expected a folder") from None
    except PermissionError:
        raise UserError(f"{what}: {path}: permission denied, cannot make this folder") from None
    return path


def write_atomic(path: str | Path, write: Callable[[Path], Any], *, suffix: str = "") -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``.

    ``suffix`` keeps an extension some writers look at (matplotlib picks the format by it).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Indented JSON; NaN (an undefined metric) is written as null, infinity is an error."""
    text = json.dumps(_nan_to_none(obj), indent=2, default=_json_default, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` that never leaves a truncated file (checkpoints, weights)."""
    import torch

    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (YAML itself leaves
    it to the loader, and PyYAML keeps the last: a config saying ``lr`` twice would train
    with one of them, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<) may be overridden, as YAML says
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: construct_mapping below refuses it
                    continue
                if duplicate and key_node.tag != "tag:yaml.org,2002:merge":
                    raise _DuplicateKey(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, *, expected: str | None = None) -> Any:
    """Load a YAML file; I/O, encoding and syntax problems are one-line ConfigErrors.

    With ``expected`` (e.g. "a dataset config mapping"), an empty file is an error too.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{path}: line {exc.problem_mark.line + 1}: {exc.problem} (each key once per mapping)"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {line}invalid YAML ({problem})") from None
    if data is None and expected is not None:
        raise ConfigError(f"{path}: file is empty (expected {expected})")
    return data


def try_lock(fd: int) -> bool:
    """Take an exclusive OS lock (flock) on an open file without waiting.

    False when another open file description holds it (a live process: the OS drops a lock
    when its holder dies, however it dies); any other failure is raised.
    """
    import errno
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True
