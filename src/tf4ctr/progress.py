"""When to draw progress bars: asked for, and on a terminal.

A bar redrawn into a log file or a pipe is a flood of carriage returns; there the epoch and
build log lines already say how far a run has come.
"""

from __future__ import annotations

import sys


def show_bars(requested: bool) -> bool:
    return bool(requested) and sys.stderr.isatty()
