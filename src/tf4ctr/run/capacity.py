"""Will the model fit in memory? Its parameters are counted before one of them is allocated.

The model is built on torch's ``meta`` device (shapes, no storage) and its training footprint
estimated: each float32 parameter is held four times over, as the weight, its gradient and
Adam's two moments (16 bytes). Activations are not counted, so the estimate is a floor: a model
refused here cannot train on this machine, and one that passes may still run short.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tf4ctr.errors import ConfigError

#: float32 weight + gradient + Adam's exp_avg and exp_avg_sq
BYTES_PER_PARAMETER = 16


def count_without_allocating(build: Callable[[], nn.Module]) -> int | None:
    """Parameters of the model ``build`` makes, built on the meta device; None when a model
    cannot be built there (then nothing is estimated)."""
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # a layer that needs real storage to initialise: no estimate
        return None
    return sum(p.numel() for p in model.parameters())


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Free memory for training on ``device``: the GPU's free bytes, or the kernel's
    MemAvailable on Linux (free pages elsewhere); None when nobody says."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_fits(
    build: Callable[[], nn.Module],
    *,
    what: str,
    device: torch.device | str = "cpu",
    free: int | None = None,
) -> int | None:
    """Refuse, with a one-line ConfigError naming ``what``, a model whose training would need
    more memory than ``device`` has free (``free`` bytes, measured when None). Returns the
    parameter count, or None where it could not be counted."""
    parameters = count_without_allocating(build)
    if parameters is None:
        return None
    needed = parameters * BYTES_PER_PARAMETER
    free = available_bytes(device) if free is None else free
    if free is not None and needed > free:
        raise ConfigError(
            f"{what}: {parameters:,} parameters need about {needed / 2**30:,.1f} GB to train "
            f"(weight, gradient and Adam's two moments: {BYTES_PER_PARAMETER} bytes each) and "
            f"{torch.device(device).type} has {free / 2**30:,.1f} GB free; make the model "
            "smaller (embedding_dim, hidden units) or the vocabularies (min_categr_count)"
        )
    return parameters
