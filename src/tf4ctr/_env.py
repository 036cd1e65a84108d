"""Switches read from the environment (the opt-outs such as ``TF4CTR_SYSTEM_MALLOC``)."""

from __future__ import annotations

import os


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to anything but "" or "0"."""
    return os.environ.get(name, "") not in ("", "0")
