"""Folders a benchmark makes, marked as its own, and removed only when so marked.

A benchmark's folders can sit under a place the user names (``--data-dir``), so a stale one is
removed only if it carries the marker this module wrote when it made it; anything else with the
same name stops the benchmark with a message instead of being deleted.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

MARKER = ".made-by-tf4ctr-benchmark"


def make_owned(path: Path) -> Path:
    """An empty folder at ``path``, marked as this benchmark's (a marked one is emptied)."""
    remove_owned(path)
    path.mkdir(parents=True)
    (path / MARKER).touch()
    return path


def remove_owned(path: Path) -> None:
    """Remove ``path`` if it is absent, or a folder this module made; otherwise exit."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and (path / MARKER).is_file():
        shutil.rmtree(path)
        return
    sys.exit(
        f"{path}: exists and was not made by a tf4ctr benchmark (no {MARKER} inside); "
        "move it away or choose another --data-dir"
    )
